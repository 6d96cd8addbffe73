#!/usr/bin/env python3
"""Peak memory and time of SavedModel -> graph model as the model grows (weights stream).

Why: converting a model must cost about the TensorFlow runtime plus a few copies of its
*largest tensor*, whatever the model's size (``tfjsconv.graph.streaming``).  The models
are built by ``streaming_models.build`` (the builder streams too): ``layers`` square
float32 kernels of 300 MB (``DIM`` = 8660) plus biases, in three variants: ``plain``
(``tanh(x @ W + b)``), ``scaled`` (``tanh((x @ W) * c + b)``, a constant scale after
each MatMul) and ``conv_scaled`` (a 1x1 conv times ``c``, which grappler folds into the
filter: the converter does that fold on the streamed filter).  Sizes: 0.6, 1.2, 2.4, 4.8 GB (2, 4, 8, 16
layers).

For each size x variant x output (default float32, float16, uint8) our CLI runs once in
a fresh process under an address-space cap (``prlimit --as``, ``--cap-gb``); printed:
wall time, peak RSS, "copies of the largest tensor" = (peak RSS - the TF-import
baseline) / 300 MB, and wall / (time to read + write the weight bytes once, measured by
copying the checkpoint's data files).  Each output is checked against the checkpoint
(``streaming_models.check``: every tensor, float32 bit-identical, uint8 within scale/2).
The reference converter runs on the sizes in ``--reference-sizes`` under the same cap;
its failure mode is reported.

    .venv/bin/python bench/bench_streaming.py                       # 0.6 and 1.2 GB
    .venv/bin/python bench/bench_streaming.py --sizes 0.6,1.2,2.4,4.8 --reference-sizes 0.6,1.2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

PYTHON = common.PYTHON
DIM = 8660
TENSOR_MB = DIM * DIM * 4 / 2**20
LAYERS = {"0.6": 2, "1.2": 4, "2.4": 8, "4.8": 16}
COLUMNS = [
    "GB",
    "variant",
    "output",
    "converter",
    "wall s",
    "read+write s",
    "peak RSS MB",
    "copies of largest",
    "check",
]
OUTPUTS = {"default": [], "float16": ["--quantize_float16"], "uint8": ["--quantize_uint8"]}
_BASELINE = (
    "from tfjsconv import tf_env; tf_env.import_tensorflow(); import tfjsconv.cli, tfjsconv.graph.convert"
)


def _env() -> dict[str, str]:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO / "converter"))


def _capped(cmd: Sequence[str], cap_gb: float) -> list[str]:
    return ["prlimit", f"--as={int(cap_gb * 2**30)}", "--", *cmd]


def build(path: Path, layers: int, variant: str) -> float:
    start = time.perf_counter()
    out = subprocess.run(
        [
            PYTHON,
            str(HERE / "streaming_models.py"),
            "build",
            str(path),
            str(layers),
            str(DIM),
            variant,
        ],
        capture_output=True,
        text=True,
        env=_env(),
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit("bench_streaming: building the model failed")
    return time.perf_counter() - start


def copy_time(src: Path, dst: Path) -> float:
    """Read and write the checkpoint's bytes once (what a conversion cannot avoid)."""
    dst.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for f in sorted((src / "variables").glob("variables.data-*")):
        with open(f, "rb") as i, open(dst / f.name, "wb") as o:
            shutil.copyfileobj(i, o, 16 << 20)
            o.flush()
            os.fsync(o.fileno())
    elapsed = time.perf_counter() - start
    shutil.rmtree(dst)
    return elapsed


def check(out: Path, src: Path, variant: str) -> str:
    res = subprocess.run(
        [PYTHON, str(HERE / "streaming_models.py"), "check", str(out), str(src), variant],
        capture_output=True,
        text=True,
        env=_env(),
    )
    lines = res.stdout.strip().splitlines()
    return lines[-1] if lines else f"check failed: {res.stderr.strip().splitlines()[-1:]}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(REPO / ".cache" / "bench_streaming"))
    ap.add_argument("--sizes", default="0.6,1.2", help="comma-separated, of " + ",".join(LAYERS))
    ap.add_argument("--variants", default="plain,scaled,conv_scaled")
    ap.add_argument("--outputs", default=",".join(OUTPUTS))
    ap.add_argument(
        "--reference-sizes", default="0.6", help="sizes the reference converter runs on ('' = none)"
    )
    ap.add_argument("--cap-gb", type=float, default=8.0, help="address-space cap of every conversion")
    ap.add_argument("--keep", action="store_true", help="keep the built models")
    args = ap.parse_args(argv)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ref_sizes = [s for s in args.reference_sizes.split(",") if s]
    ref_exe = (os.environ.get("REFERENCE_CONVERTER") or common.reference_converter()) if ref_sizes else None
    print(f"load average before: {common.load_average()}")
    base = common.measure([PYTHON, "-c", _BASELINE], env=_env())
    print(
        f"TF-import baseline RSS: {base.max_rss_mb:.0f} MB; largest tensor {TENSOR_MB:.0f} MB; "
        f"cap {args.cap_gb:g} GB (prlimit --as)\n"
    )
    rows = []
    for size in args.sizes.split(","):
        for variant in args.variants.split(","):
            src = work / f"sm_{size}_{variant}"
            if not (src / "saved_model.pb").is_file():
                shutil.rmtree(src, ignore_errors=True)
                built = build(src, LAYERS[size], variant)
                print(f"built {src.name} in {built:.1f} s", flush=True)
            io_s = copy_time(src, work / "copy")
            for output in [o for o in args.outputs.split(",") if o]:
                out = work / f"out_{size}_{variant}_{output}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [
                    PYTHON,
                    "-m",
                    "tfjsconv.cli",
                    "--input_format=tf_saved_model",
                    "--output_format=tfjs_graph_model",
                    "--quiet",
                    *OUTPUTS[output],
                    str(src),
                    str(out),
                ]
                res = common.measure(_capped(cmd, args.cap_gb), env=_env())
                if res.ok:
                    copies = (res.max_rss_mb - base.max_rss_mb) / TENSOR_MB
                    verdict = check(out, src, variant)
                    rows.append(
                        [
                            size,
                            variant,
                            output,
                            "tfjsconv",
                            f"{res.wall_s:.1f}",
                            f"{io_s:.1f}",
                            f"{res.max_rss_mb:.0f}",
                            f"{copies:.2f}",
                            verdict,
                        ]
                    )
                else:
                    rows.append(
                        [
                            size,
                            variant,
                            output,
                            "tfjsconv",
                            f"{res.wall_s:.1f}",
                            f"{io_s:.1f}",
                            f"{res.max_rss_mb:.0f}",
                            "-",
                            "FAILED: " + res.last_error_line(),
                        ]
                    )
                shutil.rmtree(out, ignore_errors=True)
                print(
                    common.markdown_table(
                        COLUMNS,
                        rows[-1:],
                    ).splitlines()[-1],
                    flush=True,
                )
            if ref_exe and size in ref_sizes:
                out = work / f"ref_{size}_{variant}"
                shutil.rmtree(out, ignore_errors=True)
                res = common.measure(
                    _capped(common.reference_saved_model_to_graph(ref_exe, str(src), str(out)), args.cap_gb),
                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                )
                status = check(out, src, variant) if res.ok else "FAILED: " + res.last_error_line()
                rows.append(
                    [
                        size,
                        variant,
                        "default",
                        "reference 4.22",
                        f"{res.wall_s:.1f}",
                        f"{io_s:.1f}",
                        f"{res.max_rss_mb:.0f}",
                        "-",
                        status,
                    ]
                )
                shutil.rmtree(out, ignore_errors=True)
                print(rows[-1], flush=True)
            if not args.keep:
                shutil.rmtree(src, ignore_errors=True)
    print(
        f"\nSavedModel -> tfjs_graph_model; each run a fresh process capped at {args.cap_gb:g} GB of address "
        f"space; TF-import baseline {base.max_rss_mb:.0f} MB; largest tensor {TENSOR_MB:.0f} MB\n"
    )
    print(
        common.markdown_table(
            COLUMNS,
            rows,
        )
    )
    print(f"\nload average after: {common.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
