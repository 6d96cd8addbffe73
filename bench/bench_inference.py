#!/usr/bin/env python3
"""tfjs 4.22 inference time of MobileNetV2 graph models converted by us vs the reference.

Why: a converter can produce a model that loads and is correct but runs slower (worse
fusions, extra ops).  MobileNetV2 (weights=None, 224x224, 1000 classes, BatchNorm
statistics from one pass of data so outputs are O(1)) is saved as a SavedModel and
converted to a graph model by both converters; each output then runs in the real tfjs
runtime in Node (``tests/python/tfjs_runtime.py``) on the wasm and cpu backends.  Times
are ``TfjsRuntime.benchmark``: median of 20 runs after a warm-up, outputs read back.
The two models are timed in ABBA order per backend (ours, ref, ref, ours; three such
pairs on wasm, one on cpu) so drifting machine load hits both alike; a column is the
median of those medians (one load spike does not decide the result).

Both outputs must predict what TensorFlow predicts (max abs difference <= 1e-4).

    .venv/bin/python bench/bench_inference.py [--runs 20] [--batch 1] [--workdir DIR]
    REFERENCE_CONVERTER=/path/to/tensorflowjs_converter .venv/bin/python bench/bench_inference.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "converter"))
sys.path.insert(0, str(REPO / "tests" / "python"))

import common  # noqa: E402

PYTHON = common.PYTHON
TOLERANCE = 1e-4

# Builds the SavedModel and TF's own predictions in a child (TF stays out of this process).
_BUILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, graph_models as gm
path, x = gm.mobilenet_v2(sys.argv[2], size=224, classes=1000)
want = gm.predict_saved_model(path, x)
(key, arr), = x.items()
(out_key, out), = want.items()
np.savez(sys.argv[3], x=arr, want=out)
print(key)
"""


def build(work: Path) -> str:
    """SavedModel under ``work/mnv2_sm`` plus ``work/tf.npz``; returns the input name."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    out = subprocess.run(
        [PYTHON, "-c", _BUILD, str(REPO / "tests" / "python"), str(work), str(work / "tf.npz")],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit("bench_inference: building MobileNetV2 failed")
    return out.stdout.strip().splitlines()[-1]


def op_summary(model_dir: str) -> str:
    """Node count and the ops that carry the compute, to explain a timing difference."""
    import collections
    import json

    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
        nodes = json.load(f)["modelTopology"]["node"]
    counts = collections.Counter(n["op"] for n in nodes if n["op"] not in ("Const", "Placeholder"))
    return f"{len(nodes)} nodes: " + ", ".join(f"{op} {k}" for op, k in sorted(counts.items()))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per measurement (median)")
    ap.add_argument("--batch", type=int, default=1, help="batch size of the timed inputs (1 or 2)")
    ap.add_argument("--backends", default="wasm,cpu")
    ap.add_argument("--wasm-pairs", type=int, default=3, help="ABBA pairs on wasm (cpu: one pair)")
    ap.add_argument("--workdir", default=None, help="keep the model and outputs here (default: a temp dir)")
    args = ap.parse_args(argv)

    import numpy as np
    from tfjs_runtime import TfjsRuntime, missing_runtime_reason

    reason = missing_runtime_reason()
    if reason:
        raise SystemExit(f"bench_inference: {reason}")
    own_tmp = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_inference-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"load average before: {common.load_average()}")
        src = str(work / "mnv2_sm")
        input_name = build(work)
        with np.load(work / "tf.npz") as data:
            x, want = data["x"], data["want"]
        ref_exe = os.environ.get("REFERENCE_CONVERTER") or common.reference_converter()
        env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
        models: dict[str, str] = {}
        conv_rows = []
        for name, cmd, job_env in [
            ("tfjsconv", common.ours_saved_model_to_graph(src, str(work / "out_ours")), env),
            (
                "reference 4.22",
                common.reference_saved_model_to_graph(ref_exe, src, str(work / "out_ref")),
                None,
            ),
        ]:
            out = cmd[-1]
            shutil.rmtree(out, ignore_errors=True)
            res = common.measure(cmd, env=job_env)
            if not res.ok:
                raise SystemExit(f"bench_inference: {name} failed: {res.last_error_line()}")
            models[name] = out
            conv_rows.append(
                [
                    name,
                    f"{res.wall_s:.1f}",
                    f"{res.max_rss_mb:.0f}",
                    sum(s for _, s in common.files_with_sizes(out)),
                    op_summary(out),
                ]
            )

        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        timed = {input_name: x[: args.batch]}
        rows = []
        with TfjsRuntime(timeout_s=600) as rt:
            for backend in backends:
                diffs = {}
                for name, out in models.items():
                    (got,) = rt.predict(out, {input_name: x}, kind="graph", backend=backend)
                    diffs[name] = float(np.max(np.abs(got.astype(np.float64) - want)))
                times: dict[str, list[float]] = {name: [] for name in models}
                # ABBA pairs; wasm is fast, so more pairs buy it less noise for little time.
                pairs = args.wasm_pairs if backend == "wasm" else 1
                order = (list(models) + list(reversed(models))) * pairs
                for name in order:
                    times[name].append(
                        rt.benchmark(models[name], timed, kind="graph", backend=backend, runs=args.runs)
                    )
                rt.clear()
                row = [backend]
                for name in models:
                    ms = statistics.median(times[name])
                    ok = "ok" if diffs[name] <= TOLERANCE else "MISMATCH"
                    row += [
                        f"{ms:.1f} ({', '.join(f'{t:.1f}' for t in times[name])})",
                        f"{diffs[name]:.1e} {ok}",
                    ]
                a, b = (statistics.median(times[n]) for n in models)
                row.append(f"{a / b:.2f}x")
                rows.append(row)
        print("\nMobileNetV2 224x224, 1000 classes (weights=None, BN stats from data), SavedModel -> graph\n")
        print(
            common.markdown_table(
                ["converter", "conversion wall s", "peak RSS MB", "output bytes", "graph ops"], conv_rows
            )
        )
        print(
            f"\ntfjs 4.22 in Node, batch {args.batch}: ms per inference = median of the medians of "
            f"{args.runs} runs each, timed in ABBA order ({args.wasm_pairs} pairs on wasm, 1 on cpu; "
            f"the medians in parentheses); max |tfjs - TF| on a batch of {len(x)}\n"
        )
        print(
            common.markdown_table(
                [
                    "backend",
                    "tfjsconv ms",
                    "tfjsconv vs TF",
                    "reference ms",
                    "reference vs TF",
                    "ours / reference",
                ],
                rows,
            )
        )
        print(f"\nload average after: {common.load_average()}")
        bad = [r for r in rows if "MISMATCH" in " ".join(r)]
        return 1 if bad else 0
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
