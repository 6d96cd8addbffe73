"""Regression guard: the fast rows, timed next to the reference converter, against a baseline.

Each row converts MobileNetV2 (224x224, 1000 classes, ``weights=None``) with tfjsconv's
CLI and with the reference ``tensorflowjs_converter`` (``REFERENCE_CONVERTER``) in the
same run, interleaved, each in a fresh process, and keeps the least CPU time (user +
system) of each. The row's figure is the **ratio** tfjsconv / reference: both run on the
same machine at the same moment, so the ratio does not depend on how fast the machine
is. The Bazel row is a no-op ``bazel build //examples/...`` (Bazel server + client CPU)
over the reference's h5 -> layers (what a user would run instead).

CPU time, not wall time, because another process on the machine moves wall times by
up to 2-3x (measured: ``--noise`` under load) and CPU times far less, while the
regressions this guards against (work repeated per weight, an extra import, a slower
kernel) all cost CPU. Wall times are printed beside it.

A row fails when its ratio is more than ``margin`` worse than the committed baseline
(``bench/quick_baseline.json``: a default margin, a row's own where its measured noise
is larger, and the noise measurement behind them). ``./dev test`` runs this, so a change cannot slow a fast path unnoticed.

    REFERENCE_CONVERTER=$(bench/setup_reference.sh) .venv/bin/python bench/bench_quick.py
    ... bench/bench_quick.py --noise 5      # run the rows 5 times, print each row's spread
    ... bench/bench_quick.py --update       # write the measured ratios as the new baseline
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

REPO = common.REPO
BASELINE = os.path.join(REPO, "bench", "quick_baseline.json")

# (row, converter flags, input: "h5" | "layers" | "saved_model")
ROWS: list[tuple[str, list[str], str]] = [
    ("mnv2 h5 -> layers", ["--input_format=keras", "--output_format=tfjs_layers_model"], "h5"),
    (
        "mnv2 h5 -> layers uint8",
        ["--input_format=keras", "--output_format=tfjs_layers_model", "--quantize_uint8=*"],
        "h5",
    ),
    (
        "mnv2 layers -> layers uint8, 1 MB shards",
        [
            "--input_format=tfjs_layers_model",
            "--output_format=tfjs_layers_model",
            "--quantize_uint8=*",
            "--weight_shard_size_bytes=1048576",
        ],
        "layers",
    ),
    (
        "mnv2 SavedModel -> graph",
        ["--input_format=tf_saved_model", "--output_format=tfjs_graph_model"],
        "saved_model",
    ),
]
REFERENCE_RUNS = 2
# A row under FAST_S seconds runs FAST_EXTRA_RUNS more times: process start-up jitter
# is a larger part of it, and the runs are cheap.
FAST_S = 2.0
FAST_EXTRA_RUNS = 2
BAZEL_WARMUP = 4
REFERENCE_LONG_S = 10.0
BAZEL_ROW = "bazel no-op build //examples/..."
BAZEL_DENOMINATOR = "mnv2 h5 -> layers"


def build_models(work: str) -> dict[str, str]:
    """MobileNetV2 as SavedModel and h5 (in a child: TensorFlow stays out of this process)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import graph_models as gm; "
        "gm.mobilenet_v2(sys.argv[2], size=224, classes=1000)"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [common.PYTHON, "-c", code, os.path.join(REPO, "tests", "python"), work],
        env=env,
        check=True,
        capture_output=True,
    )
    return {"h5": os.path.join(work, "mnv2.h5"), "saved_model": os.path.join(work, "mnv2_sm")}


def ours_cmd() -> list[str]:
    script = os.path.join(os.path.dirname(common.PYTHON), "tensorflowjs_converter")
    return [script, "--quiet"] if os.path.exists(script) else [common.PYTHON, "-m", "tfjsconv.cli", "--quiet"]


def timed(cmd: Sequence[str], out: str) -> common.Result:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "converter"))
    result = common.measure(cmd, env=env)
    if not result.ok:
        raise SystemExit(f"bench_quick: {' '.join(cmd[:2])} failed: {result.last_error_line()}")
    return result


def _fastest(results: Sequence[common.Result]) -> tuple[float, float]:
    """(least CPU seconds, least wall seconds) over the runs."""
    return min(r.cpu_s for r in results), min(r.wall_s for r in results)


def _process_cpu_s(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far (/proc/PID/stat fields 14-15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bazel_noop(runs: int) -> tuple[float, float]:
    """(least CPU, least wall) of a no-op ``bazel build //examples/...``: the CPU is the
    Bazel server's (the client only forwards the command) plus the client's."""
    cmd = ["bazel", "build", "--noshow_progress", "//examples/..."]
    # The first build may re-analyze (after `bazel test`); the next ones warm the JVM's
    # JIT, whose compiling threads would otherwise count as the no-op's CPU.
    for _ in range(BAZEL_WARMUP):
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    pid = int(
        subprocess.run(
            ["bazel", "info", "server_pid"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
    )
    cpu, wall = [], []
    for _ in range(runs + FAST_EXTRA_RUNS):
        before = _process_cpu_s(pid)
        result = common.measure(cmd, cwd=REPO)
        if not result.ok:
            raise SystemExit(f"bench_quick: bazel build failed: {result.last_error_line()}")
        cpu.append(_process_cpu_s(pid) - before + result.cpu_s)
        wall.append(result.wall_s)
    return min(cpu), min(wall)


def measure_rows(
    work: str, inputs: dict[str, str], reference: str, runs: int, bazel: bool
) -> dict[str, dict]:
    """{row: {"ours_cpu_s", "ref_cpu_s", "ratio", "ours_wall_s", "ref_wall_s"}}.

    Each figure is the least of ``runs`` for tfjsconv and of up to ``REFERENCE_RUNS``
    for the reference, interleaved; a reference run over ``REFERENCE_LONG_S`` is not
    repeated (its relative noise is a few percent). The ratio is of **CPU time**
    (user + system of the converter process): another process on the machine shifts
    wall time far more than CPU time, and a slower fast path (work repeated per weight)
    costs CPU. Wall times are printed beside it.
    """
    rows: dict[str, dict] = {}
    for name, flags, kind in ROWS:
        src = inputs[kind]
        out = os.path.join(work, "out")
        ours: list[common.Result] = []
        ref: list[common.Result] = []
        for i in range(runs + FAST_EXTRA_RUNS):
            if i >= runs and ours[0].wall_s > FAST_S:
                break
            ours.append(timed([*ours_cmd(), *flags, src, out], out))
            if i < REFERENCE_RUNS and not (ref and ref[0].wall_s > REFERENCE_LONG_S):
                ref.append(timed([reference, *flags, src, out], out))
        (ours_cpu, ours_wall), (ref_cpu, ref_wall) = _fastest(ours), _fastest(ref)
        rows[name] = {
            "ours_cpu_s": ours_cpu,
            "ref_cpu_s": ref_cpu,
            "ratio": ours_cpu / ref_cpu,
            "ours_wall_s": ours_wall,
            "ref_wall_s": ref_wall,
        }
    if bazel:
        cpu, wall = bazel_noop(runs)
        base = rows[BAZEL_DENOMINATOR]
        rows[BAZEL_ROW] = {
            "ours_cpu_s": cpu,
            "ref_cpu_s": base["ref_cpu_s"],
            "ratio": cpu / base["ref_cpu_s"],
            "ours_wall_s": wall,
            "ref_wall_s": base["ref_wall_s"],
        }
    return rows


def _figures(row: dict) -> list[str]:
    return [
        f"{row['ours_cpu_s']:.2f} / {row['ours_wall_s']:.2f}",
        f"{row['ref_cpu_s']:.2f} / {row['ref_wall_s']:.2f}",
        f"{row['ratio']:.4f}",
    ]


def compare(rows: dict[str, dict], baseline: dict) -> tuple[list[list[object]], list[str]]:
    """Table rows and the names of rows that regressed past the baseline's margin."""
    table: list[list[object]] = []
    failed: list[str] = []
    for name, row in rows.items():
        base = baseline["rows"].get(name)
        # A row may carry its own margin (its measured noise is larger), else the default.
        margin = float((base or {}).get("margin", baseline["margin"]))
        if base is None:
            table.append([name, *_figures(row), "-", "-", "new"])
            continue
        change = row["ratio"] / base["ratio"] - 1
        status = "ok"
        if change > margin:
            status = f"REGRESSED (> +{margin:.0%})"
            failed.append(name)
        elif change < -margin:
            status = "faster than baseline (--update)"
        table.append([name, *_figures(row), f"{base['ratio']:.4f}", f"{change:+.0%}", status])
    return table, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="tfjsconv runs per row (the fastest counts)")
    parser.add_argument("--noise", type=int, default=0, help="measure all rows N times; print the spread")
    parser.add_argument("--update", action="store_true", help="write the ratios as the new baseline")
    parser.add_argument("--no-bazel", action="store_true", help="skip the Bazel no-op row")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    reference = os.environ.get("REFERENCE_CONVERTER")
    if not reference:
        print(
            "bench_quick: REFERENCE_CONVERTER is not set (bench/setup_reference.sh prints it)",
            file=sys.stderr,
        )
        return 2
    work = args.workdir or tempfile.mkdtemp(prefix="bench-quick-")
    os.makedirs(work, exist_ok=True)
    try:
        inputs = build_models(work)
        layers = os.path.join(work, "mnv2_layers")
        timed([*ours_cmd(), *ROWS[0][1], inputs["h5"], layers], layers)  # the layers input
        inputs["layers"] = os.path.join(layers, "model.json")
        print(f"load average before: {common.load_average()}")
        sets = [
            measure_rows(work, inputs, reference, args.runs, not args.no_bazel)
            for _ in range(max(1, args.noise))
        ]
        rows = sets[-1]
        if args.noise:
            spread = []
            for name in rows:
                ratios = [s[name]["ratio"] for s in sets]
                spread.append(
                    [name, ", ".join(f"{r:.4f}" for r in ratios), f"{max(ratios) / min(ratios) - 1:.1%}"]
                )
            print(common.markdown_table(["row", "ratio per set", "max/min - 1"], spread))
        if args.update:
            with open(args.baseline, encoding="utf-8") as f:
                baseline = json.load(f)
            old = baseline.get("rows", {})
            baseline["rows"] = {
                name: {k: round(v, 4) for k, v in row.items()}
                | ({"margin": old[name]["margin"]} if "margin" in old.get(name, {}) else {})
                for name, row in rows.items()
            }
            with open(args.baseline, "w", encoding="utf-8") as f:
                json.dump(baseline, f, indent=2, sort_keys=True)
                f.write("\n")
            print(f"bench_quick: baseline written to {args.baseline}")
            return 0
        with open(args.baseline, encoding="utf-8") as f:
            baseline = json.load(f)
        table, failed = compare(rows, baseline)
        print(
            common.markdown_table(
                [
                    "row",
                    "tfjsconv CPU / wall s",
                    "reference CPU / wall s",
                    "CPU ratio",
                    "baseline",
                    "change",
                    "status",
                ],
                table,
            )
        )
        print(f"load average after: {common.load_average()}")
        if failed:
            print(f"bench_quick: slower than the baseline: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
