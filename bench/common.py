"""Helpers shared by the benchmark scripts (``bench/bench_*.py``).

Usage from another bench script::

    sys.path.insert(0, os.path.dirname(__file__)); import common
    result = common.measure([converter, "--input_format=keras", "m.h5", "out"])
    print(common.markdown_table(["job", "wall s", "maxRSS MB"], [[name, result.wall_s, result.max_rss_mb]]))

Peak memory is ``ru_maxrss`` of ``RUSAGE_CHILDREN``, which is the maximum over *all*
children a process ever waited for. So each command runs under a fresh Python "probe"
child that reports only its own single grandchild: measurements never leak into each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
# The interpreter that has tfjsconv's requirements (the repo's venv once ./dev set it up).
PYTHON = VENV_PYTHON if os.path.exists(VENV_PYTHON) else sys.executable


def ours_saved_model_to_graph(src: str, out: str) -> list[str]:
    """Our CLI converting a SavedModel to a graph model (quiet: no progress lines)."""
    return [
        PYTHON,
        "-m",
        "tfjsconv.cli",
        "--input_format=tf_saved_model",
        "--output_format=tfjs_graph_model",
        "--quiet",
        src,
        out,
    ]


def reference_saved_model_to_graph(exe: str, src: str, out: str) -> list[str]:
    """The reference converter ``exe`` doing the same (flags before the positionals)."""
    return [exe, "--input_format=tf_saved_model", "--output_format=tfjs_graph_model", src, out]


_PROBE = r"""
import json, resource, subprocess, sys, time
spec = json.loads(sys.argv[1])
with open(spec["stdout"], "wb") as out, open(spec["stderr"], "wb") as err:
    start = time.perf_counter()
    try:
        rc = subprocess.run(spec["cmd"], stdout=out, stderr=err, cwd=spec["cwd"], env=spec["env"],
                            timeout=spec["timeout"]).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "max_rss_kb": usage.ru_maxrss,
                  "user_s": usage.ru_utime, "sys_s": usage.ru_stime}))
"""


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured run. ``ok`` is exit status 0; stdout/stderr are the captured texts."""

    cmd: Sequence[str]
    returncode: object
    wall_s: float
    max_rss_mb: float
    cpu_s: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_error_line(self) -> str:
        """The last line naming an error (TensorFlow logs come after it), else the last line."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        errors = [
            line
            for line in lines
            if any(k in line for k in ("Error", "error:", "bad_alloc", "what()", "Killed"))
        ]
        if isinstance(self.returncode, int) and self.returncode < 0:
            import signal

            return f"killed by {signal.Signals(-self.returncode).name}" + (
                f": {errors[-1][:200]}" if errors else ""
            )
        chosen = errors[-1] if errors else (lines[-1] if lines else "")
        return f"exit {self.returncode}: {chosen.strip()[:200]}"


def measure(
    cmd: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
    scratch: str | None = None,
) -> Result:
    """Run ``cmd`` once in a fresh probe process; return wall time, peak RSS and output."""
    import tempfile

    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        spec = {
            "cmd": [str(c) for c in cmd],
            "cwd": cwd,
            "env": full_env,
            "timeout": timeout,
            "stdout": os.path.join(tmp, "out"),
            "stderr": os.path.join(tmp, "err"),
        }
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, json.dumps(spec)], capture_output=True, text=True, check=True
        )
        data = json.loads(probe.stdout)
        with open(spec["stdout"], encoding="utf-8", errors="replace") as f:
            out = f.read()
        with open(spec["stderr"], encoding="utf-8", errors="replace") as f:
            err = f.read()
    return Result(
        cmd=tuple(spec["cmd"]),
        returncode=data["rc"],
        wall_s=data["wall_s"],
        max_rss_mb=data["max_rss_kb"] / 1024.0,
        cpu_s=data["user_s"] + data["sys_s"],
        stdout=out,
        stderr=err,
    )


def measure_repeated(cmd: Sequence[str], runs: int, **kw) -> list[Result]:
    """``runs`` independent measurements of the same command."""
    return [measure(cmd, **kw) for _ in range(runs)]


def summarize(results: Sequence[Result]) -> dict[str, object]:
    """Median wall/RSS over the successful runs (all runs if none succeeded)."""
    good = [r for r in results if r.ok] or list(results)
    return {
        "ok_runs": f"{sum(r.ok for r in results)}/{len(results)}",
        "wall_s": round(statistics.median(r.wall_s for r in good), 2),
        "wall_all": ", ".join(f"{r.wall_s:.2f}" for r in results),
        "max_rss_mb": round(statistics.median(r.max_rss_mb for r in good)),
    }


def files_with_sizes(path: str) -> list[tuple]:
    """Sorted (relative path, size) of every file under ``path`` (or the file itself)."""
    if os.path.isfile(path):
        return [(os.path.basename(path), os.path.getsize(path))]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            out.append((os.path.relpath(full, path), os.path.getsize(full)))
    return out


def tree_digest(path: str) -> str:
    """SHA-256 over relative names and contents: equal digests mean byte-identical outputs."""
    h = hashlib.sha256()
    base = path if os.path.isdir(path) else os.path.dirname(path)
    entries = files_with_sizes(path)
    for rel, _ in entries:
        full = os.path.join(base, rel) if os.path.isdir(path) else path
        h.update(rel.encode("utf-8") + b"\0")
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def canonical_json(path: str) -> str:
    """model.json re-serialized with sorted keys, for order-insensitive comparisons."""
    with open(path, encoding="utf-8") as f:
        return json.dumps(json.load(f), sort_keys=True, separators=(",", ":"))


def load_average() -> str:
    """The 1/5/15-minute load averages: benches print them so a busy machine shows."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` inside cells is escaped."""

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def reference_converter() -> str:
    """Path of the reference ``tensorflowjs_converter`` (created on first use)."""
    script = os.path.join(REPO, "bench", "setup_reference.sh")
    out = subprocess.run([script], capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("bench: could not set up the reference converter")
    return out.stdout.strip().splitlines()[-1]
