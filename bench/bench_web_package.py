#!/usr/bin/env python3
"""Benchmark tfjs_web_package on MobileNetV2 (224x224, 1000 classes) as float32, float16
and uint8 graph models: raw / gzip / brotli bytes of what the loader fetches, and the
packaging time next to the conversion time (ours and, with ``REFERENCE_CONVERTER``, the
reference converter's, in the same run; the reference has no packaging step).

Packaging runs as a fresh process (how the Bazel action runs it: interpreter start,
imports, read, hash, compress, write) and in-process (``package_files``: the work
itself); gzip and brotli are also timed alone on one thread. The weights are
MobileNetV2's random initialization (graph_models.mobilenet_v2), so the ratios are those
of float data with little redundancy; trained weights compress about as poorly.

Usage: bench/bench_web_package.py [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
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
    "q = {'quantize_' + sys.argv[3]: True} if sys.argv[3] != 'float32' else {}\n"
    "api.convert_keras(sys.argv[1], sys.argv[2], output_format='tfjs_graph_model', overwrite=True, **q)\n"
)
VARIANTS = ("float32", "float16", "uint8")


def _median_wall(cmd: Sequence[str], runs: int, env: dict) -> object:
    results = [common.measure(cmd, env=env) for _ in range(runs)]
    if not any(r.ok for r in results):
        return "failed: " + results[-1].last_error_line()
    return common.summarize(results)["wall_s"]


def _in_process(model_dir: str, runs: int) -> tuple:
    """(package_files s, gzip s, brotli s): medians; the codecs on one thread."""
    from tfjsconv.webpackage import compress
    from tfjsconv.webpackage.package import package_files

    pack, gz, br = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        files, report = package_files(model_dir, "mnv2-web", "1.0.0")
        pack.append(time.perf_counter() - t0)
        fetched = [r["path"] for r in report["files"] if r["path"] in files and r["path"] != "index.js"]
        fetched = [n for n in fetched if n != "model.json"]  # the hashed copy is the one fetched
        t0 = time.perf_counter()
        for name in fetched:
            compress.gzip_bytes(files[name])
        gz.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for name in fetched:
            compress.brotli_bytes(files[name], binary=name.endswith(".bin"))
        br.append(time.perf_counter() - t0)
    return statistics.median(pack), statistics.median(gz), statistics.median(br), report


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    import graph_models as gm

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_web_package-"))
    work.mkdir(parents=True, exist_ok=True)
    h5 = work / "mnv2.h5"
    if not h5.exists():
        gm.mobilenet_v2(str(work), size=224, classes=1000)
    env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
    ref_exe = os.environ.get("REFERENCE_CONVERTER")
    rows: list[list[object]] = []
    for variant in VARIANTS:
        model = work / f"mnv2_{variant}"
        convert_s = _median_wall(
            [common.PYTHON, "-c", _CONVERT, str(h5), str(model), variant], args.runs, env
        )
        if not (model / "model.json").is_file():
            rows.append([variant, "-", "-", "-", "-", convert_s, "-", "-", "-", "-", "-"])
            continue
        ref_s: object = "-"
        if ref_exe:
            quant = [] if variant == "float32" else [f"--quantize_{variant}=*"]
            ref_out = work / f"ref_{variant}"
            ref_cmd = [
                ref_exe,
                "--input_format=keras",
                "--output_format=tfjs_graph_model",
                *quant,
                str(h5),
                str(ref_out),
            ]
            ref_s = _median_wall(ref_cmd, args.runs, env)
        package_cmd = [
            common.PYTHON,
            "-m",
            "tfjsconv.webpackage.cli",
            str(model),
            str(work / f"web_{variant}"),
            "--package_name=mnv2-web",
            "--version=1.0.0",
            "--overwrite",
            "--quiet",
        ]
        package_s = _median_wall(package_cmd, args.runs, env)
        pack_s, gz_s, br_s, report = _in_process(str(model), args.runs)
        totals = report["model"]
        rows.append(
            [
                variant,
                totals["shards"],
                _mb(totals["raw"]),
                f"{_mb(totals['gzip'])} ({totals['gzip'] / totals['raw']:.3f})",
                f"{_mb(totals['brotli'])} ({totals['brotli'] / totals['raw']:.3f})",
                convert_s,
                ref_s,
                package_s,
                f"{pack_s:.2f}",
                f"{gz_s:.2f}",
                f"{br_s:.2f}",
            ]
        )
    print(
        f"MobileNetV2 224x224, 1000 classes, keras h5 -> graph; median of {args.runs} runs; "
        f"load average {common.load_average()}\n"
    )
    print(
        common.markdown_table(
            [
                "weights",
                "shards",
                "raw MB",
                "gzip MB (ratio)",
                "brotli MB (ratio)",
                "convert s (ours)",
                "convert s (reference)",
                "package s (process)",
                "package s (in-process)",
                "gzip s (1 thread)",
                "brotli s (1 thread)",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
