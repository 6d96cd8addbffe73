#!/usr/bin/env python3
"""Benchmark graph-model conversions: MobileNetV2 SavedModel -> graph, Keras h5 -> graph.

Each conversion runs in a fresh process (the way a build action runs it), measured by
wall time and that process's own peak RSS (``common.measure``).  When
``REFERENCE_CONVERTER`` names the reference ``tensorflowjs_converter`` executable, the
same conversions are measured with it in the same run, in extra columns.

Usage: bench/bench_graph.py [--size 224] [--classes 1000] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
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

_CONVERT = (
    "import sys\n"
    "from tfjsconv import api\n"
    "from tfjsconv.options import ConversionOptions\n"
    "api.convert(sys.argv[1], sys.argv[2], ConversionOptions(input_format=sys.argv[3],"
    " output_format='tfjs_graph_model', overwrite=True))\n"
)


def ours(src: str, out: str, fmt: str) -> list[str]:
    return [common.PYTHON, "-c", _CONVERT, src, out, fmt]


def reference(exe: str, src: str, out: str, fmt: str) -> list[str]:
    # Flags before the positionals (a value-less flag would swallow the input path).
    return [exe, f"--input_format={fmt}", "--output_format=tfjs_graph_model", src, out]


def bench(cmd: Sequence[str], out: str, runs: int, env=None) -> list[object]:
    results = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        results.append(common.measure(cmd, env=env))
    summary = common.summarize(results)
    if not any(r.ok for r in results):
        return [summary["ok_runs"], "failed", "-", results[-1].last_error_line()]
    size = sum(s for _, s in common.files_with_sizes(out))
    return [summary["ok_runs"], summary["wall_s"], summary["max_rss_mb"], size]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="MobileNetV2 input size")
    ap.add_argument("--classes", type=int, default=1000, help="MobileNetV2 classes (1000: the 14 MB model)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    import graph_models as gm

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_graph-"))
    work.mkdir(parents=True, exist_ok=True)
    sm, h5 = work / "mnv2_sm", work / "mnv2.h5"
    if not (sm.exists() and h5.exists()):
        gm.mobilenet_v2(str(work), size=args.size, classes=args.classes)
    env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
    ref_exe = os.environ.get("REFERENCE_CONVERTER")
    jobs = [
        ("mnv2 SavedModel -> graph", str(sm), "tf_saved_model"),
        ("mnv2 keras h5 -> graph", str(h5), "keras"),
    ]
    rows = []
    for label, src, fmt in jobs:
        row = [label] + bench(ours(src, str(work / "out_ours"), fmt), str(work / "out_ours"), args.runs, env)
        if ref_exe:
            row += bench(
                reference(ref_exe, src, str(work / "out_ref"), fmt), str(work / "out_ref"), args.runs
            )
        rows.append(row)
    headers = ["job", "ok", "tfjsconv wall s", "tfjsconv peak RSS MB", "tfjsconv output bytes"]
    if ref_exe:
        headers += ["ref ok", "reference wall s", "reference peak RSS MB", "reference output bytes"]
    print(
        f"MobileNetV2 {args.size}x{args.size}, {args.classes} classes; median of {args.runs} runs, each in a fresh process\n"
    )
    print(common.markdown_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
