"""Benchmark: cold Bazel builds against the CLI, and where a cold build's time goes.

    .venv/bin/python bench/bench_cold_build.py [--checkout DIR] [--label NAME] [--json F]

Builds a temporary copy of a checkout (this one, or ``--checkout``, e.g. a
``git worktree`` of an older commit) with the `bench_models` package of
``bench_bazel.py`` (10 seeded MLPs and one MobileNetV2, keras -> tfjs_graph_model), and
measures in the same run, wall clock:

* the CLI (``python -m tfjsconv.cli``, fresh process each): the small model alone,
  MobileNetV2 alone, the 11 models one after another;
* Bazel cold (``bazel clean`` + ``bazel shutdown``: server start to done, persistent
  workers): the small model alone, MobileNetV2 alone, the 11 models with worker
  sandboxing (the ``.bazelrc`` default) and without;
* analysis after a server restart (``bazel shutdown``, then ``build --nobuild``);
* a no-op rebuild (the least of 3).

``--rounds N`` measures every row N times, one round after the other, and reports each
number's median (the ratios are of medians; each round's ratio is listed too): single
cold builds and CLI runs vary by 10-20% from run to run on 2 cores.

Each cold build is profiled (``--profile``) and split into Bazel's start (launch, init,
target patterns), analysis, execution before the first conversion starts (input
metadata and digests, sandbox set-up, worker spawn) and the conversion actions; the
worker log splits the first conversion into process start and the first request (its
imports, TensorFlow's included, and the conversion). ``TF import`` is
``python -c "import tensorflow"`` alone. Prints markdown tables; the targets of the
cold-build design (docs/build-cluster.md) are checked in the last column.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_bazel  # noqa: E402
import common  # noqa: E402

BAZEL = shutil.which("bazel") or "bazel"

# The cold-build targets: (row, limit) with limit a ratio to the CLI row named, or seconds.
TARGETS = {
    "small": ("x CLI", 1.5),
    "mobilenet": ("x CLI", 1.3),
    "all_workers": ("s", 12.0),
    "analysis_after_restart": ("s", 2.0),
    "noop": ("s", 0.5),
}


def phases(profile: str) -> dict[str, float]:
    """Seconds per phase of a Bazel JSON profile (4.2.3 and 7.x mark phases alike)."""
    with open(profile, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    marks: dict[str, float] = {}
    launch = 0.0
    convert_start: float | None = None
    convert_end = 0.0
    end = 0.0
    for e in events:
        if e.get("cat") == "build phase marker":
            if e.get("ph") == "X" and e.get("name") == "Launch Blaze":
                launch = e["dur"] / 1e6
            else:
                marks[e["name"]] = e["ts"] / 1e6
        if e.get("cat") == "action processing" and str(e.get("name", "")).startswith("Converting "):
            start = e["ts"] / 1e6
            convert_start = start if convert_start is None else min(convert_start, start)
            convert_end = max(convert_end, start + e["dur"] / 1e6)
        if "ts" in e:
            end = max(end, (e["ts"] + e.get("dur", 0)) / 1e6)
    analysis_start = marks.get("Load and analyze dependencies", marks.get("Analyze dependencies", 0.0))
    done = marks.get("Complete build", end)
    # --nobuild has no execution phase: analysis ends where the build completes.
    build_start = marks.get("Prepare for build", marks.get("Build artifacts", done))
    out = {
        "bazel start (launch, init, patterns)": launch + analysis_start,
        "analysis": build_start - analysis_start,
    }
    if convert_start is not None:
        out["execution before the first conversion"] = convert_start - build_start
        out["conversion actions (first start to last end)"] = convert_end - convert_start
        out["after the last conversion"] = done - convert_end
    else:
        out["execution"] = done - build_start
    return out


def worker_first_requests(output_base: str) -> list[tuple[float, float]]:
    """(process start -> first request, first request's seconds) of each TfjsConvert worker."""
    found = []
    for log in sorted(glob.glob(os.path.join(output_base, "bazel-workers", "*TfjsConvert*.log"))):
        text = Path(log).read_text(errors="replace")
        m = re.search(
            r"handled request 1 \(exit \d+\) in ([\d.]+) s, ([\d.]+) s after the process started", text
        )
        if m:
            found.append((float(m.group(2)), float(m.group(1))))
    return found


class Workspace:
    def __init__(self, ws: str, ob: str) -> None:
        self.ws, self.ob = ws, ob
        self.base = [BAZEL, f"--output_base={ob}"]

    def shutdown(self) -> None:
        subprocess.run([*self.base, "shutdown"], cwd=self.ws, capture_output=True)

    def cold(self, target: str, profile: str, *flags: str) -> float:
        """Server start to done, with nothing built: (wall seconds)."""
        subprocess.run([*self.base, "clean"], cwd=self.ws, capture_output=True)
        self.shutdown()
        for log in glob.glob(os.path.join(self.ob, "bazel-workers", "*.log")):
            os.unlink(log)
        return bench_bazel.timed_run(
            [*self.base, "build", "--strategy=TfjsConvert=worker", f"--profile={profile}", *flags, target],
            self.ws,
        )


def run(checkout: str, tmp: str, small: int, rounds: int = 1) -> dict[str, object]:
    ws, *names = bench_bazel.make_workspace(tmp, small, True, source=checkout)
    ob = os.path.join(tmp, "output_base")
    w = Workspace(ws, ob)
    # Fetch the repositories once (pip install, snapshot): no row pays for them.
    bench_bazel.timed_run([*w.base, "build", "--nobuild", "//bench_models:all"], ws)
    per_round = [measure(w, tmp, names) for _ in range(rounds)]
    merged = median_of(per_round)
    merged.update(checkout=checkout, cores=os.cpu_count(), load=common.load_average(), rounds=per_round)
    return merged


def measure(w: Workspace, tmp: str, names: list[str]) -> dict[str, Any]:
    """One round: every row once, the CLI rows first."""
    mobilenet = "mobilenet_v2"
    small_name = min(n for n in names if n != mobilenet)
    results: dict[str, Any] = {}
    env = dict(os.environ, PYTHONPATH=os.path.join(w.ws, "converter"), TF_CPP_MIN_LOG_LEVEL="2")
    cli = [
        common.VENV_PYTHON,
        "-m",
        "tfjsconv.cli",
        "--input_format=keras",
        "--output_format=tfjs_graph_model",
    ]
    cli_times = {}
    for name in names:
        out = os.path.join(tmp, "cli_out", name)
        shutil.rmtree(out, ignore_errors=True)
        cli_times[name] = bench_bazel.timed_run(
            [*cli, "--quiet", os.path.join(w.ws, "bench_models", name + ".h5"), out], tmp, env
        )
    results["cli"] = {
        "small": cli_times[small_name],
        "mobilenet": cli_times[mobilenet],
        "all": sum(cli_times.values()),
    }
    results["tf_import"] = bench_bazel.timed_run([common.VENV_PYTHON, "-c", "import tensorflow"], tmp, env)

    cold: dict[str, dict[str, object]] = {}
    for key, target, flags in (
        ("small", f"//bench_models:{small_name}", ()),
        ("mobilenet", f"//bench_models:{mobilenet}", ()),
        ("all_workers", "//bench_models:all", ()),
        ("all_workers_unsandboxed", "//bench_models:all", ("--noworker_sandboxing",)),
    ):
        profile = os.path.join(tmp, f"{key}.profile.json")
        wall = w.cold(target, profile, *flags)
        cold[key] = {"wall": wall, "phases": phases(profile), "workers": worker_first_requests(w.ob)}
    results["cold"] = cold

    w.shutdown()
    profile = os.path.join(tmp, "restart.profile.json")
    wall = bench_bazel.timed_run(
        [*w.base, "build", "--nobuild", f"--profile={profile}", "//bench_models:all"], w.ws
    )
    results["analysis_after_restart"] = {"wall": wall, "phases": phases(profile)}
    bench_bazel.timed_run([*w.base, "build", "//bench_models:all"], w.ws)
    # The least of 3: the first rebuild after a restart still runs Bazel's cold JIT.
    results["noop"] = min(
        bench_bazel.timed_run([*w.base, "build", "//bench_models:all"], w.ws) for _ in range(3)
    )
    w.shutdown()
    return results


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number the median of its rounds; a cold build's worker split is the one of its
    median round (the rounds' lists are kept beside, under "rounds")."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v[k] for v in values]) for k in first}
        if isinstance(first, (int, float)):
            return statistics.median(values)
        return first

    merged: dict[str, Any] = merge(rounds)
    for key, c in merged["cold"].items():
        walls = [r["cold"][key]["wall"] for r in rounds]
        middle = sorted(range(len(rounds)), key=walls.__getitem__)[len(rounds) // 2]
        c["workers"] = rounds[middle]["cold"][key]["workers"]
    return merged


def tables(r: dict, label: str) -> str:
    cli = r["cli"]
    cold = r["cold"]

    def verdict(key: str, value: float, cli_s: float | None = None) -> str:
        unit, limit = TARGETS[key]
        measured = value / cli_s if cli_s else value
        shown = f"{measured:.2f}{'x' if cli_s else ' s'}"
        return f"{shown} (target <= {limit:g}{'x' if cli_s else ' s'}: {'met' if measured <= limit else 'NOT met'})"

    rows = [
        ["CLI: small model", f"{cli['small']:.2f}", ""],
        ["CLI: MobileNetV2", f"{cli['mobilenet']:.2f}", ""],
        ["CLI: 11 models, one process each", f"{cli['all']:.2f}", ""],
        ["python -c 'import tensorflow'", f"{r['tf_import']:.2f}", ""],
        [
            "bazel cold: small model",
            f"{cold['small']['wall']:.2f}",
            verdict("small", cold["small"]["wall"], cli["small"]),
        ],
        [
            "bazel cold: MobileNetV2, worker",
            f"{cold['mobilenet']['wall']:.2f}",
            verdict("mobilenet", cold["mobilenet"]["wall"], cli["mobilenet"]),
        ],
        [
            "bazel cold: 11 models, sandboxed workers",
            f"{cold['all_workers']['wall']:.2f}",
            verdict("all_workers", cold["all_workers"]["wall"]),
        ],
        [
            "bazel cold: 11 models, --noworker_sandboxing",
            f"{cold['all_workers_unsandboxed']['wall']:.2f}",
            "",
        ],
        [
            "analysis after a server restart (build --nobuild)",
            f"{r['analysis_after_restart']['phases']['analysis']:.2f}",
            verdict("analysis_after_restart", r["analysis_after_restart"]["phases"]["analysis"]),
        ],
        ["no-op rebuild", f"{r['noop']:.2f}", verdict("noop", r["noop"])],
    ]
    n = len(r["rounds"])
    out = [
        f"### {label}  (cores: {r['cores']}, load average before: {r['load']}; "
        f"{'median of ' + str(n) + ' rounds' if n > 1 else 'one round'})",
        "",
    ]
    out.append(common.markdown_table(["row", "wall s", "against the target"], rows))
    if n > 1:
        for key in ("small", "mobilenet"):
            each = [x["cold"][key]["wall"] / x["cli"][key] for x in r["rounds"]]
            out.append(f"\nPer round, bazel cold {key} / its CLI: " + ", ".join(f"{v:.2f}x" for v in each))
    # Where each cold build's time went.
    names = list(next(iter(cold.values()))["phases"])
    brows = []
    for key, c in cold.items():
        row = [key] + [f"{c['phases'].get(n, 0.0):.2f}" for n in names]
        firsts = c["workers"]
        row.append(
            ", ".join(f"{a:.2f} + {b:.2f}" for a, b in firsts[:2]) + (" ..." if len(firsts) > 2 else "")
            or "-"
        )
        brows.append(row)
    out += ["", common.markdown_table(["cold build", *names, "worker: start + first request"], brows)]
    return "\n".join(out)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkout", default=str(common.REPO), help="the source tree to build (default: this one)"
    )
    p.add_argument("--label", default="", help="table heading (default: the checkout's commit)")
    p.add_argument("--small", type=int, default=10, help="number of small MLP models")
    p.add_argument("--json", help="also write the raw numbers here")
    p.add_argument("--rounds", type=int, default=1, help="measure every row this many times; report medians")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = p.parse_args(argv)
    label = (
        args.label
        or subprocess.run(
            ["git", "-C", args.checkout, "log", "-1", "--format=%h %s"], capture_output=True, text=True
        ).stdout.strip()
    )
    tmp = tempfile.mkdtemp(prefix="bench_cold_")
    try:
        results = run(os.path.abspath(args.checkout), tmp, args.small, args.rounds)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            subprocess.run(["chmod", "-R", "u+w", tmp], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(tables(results, label))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
