"""Wall time and peak RSS of Keras h5 -> tfjs layers conversions (MobileNetV2).

Each conversion runs as a separate process (measured by ``common.measure``: wall time
and the child's own ``ru_maxrss``). If ``REFERENCE_CONVERTER`` points to the reference
``tensorflowjs_converter``, the same jobs run with it in the same session.

    .venv/bin/python bench/bench_layers.py [--runs 3] [--keep DIR]
    REFERENCE_CONVERTER=$(bench/setup_reference.sh) .venv/bin/python bench/bench_layers.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

REPO = common.REPO
PYTHON = common.PYTHON

# (job name, converter flags, input kind: "h5" or "layers")
JOBS = [
    ("mnv2_keras_to_layers", ["--input_format=keras", "--output_format=tfjs_layers_model"], "h5"),
    (
        "mnv2_keras_to_layers_uint8",
        ["--input_format=keras", "--output_format=tfjs_layers_model", "--quantize_uint8=*"],
        "h5",
    ),
    (
        "mnv2_layers_to_layers_q8_shard",
        [
            "--input_format=tfjs_layers_model",
            "--output_format=tfjs_layers_model",
            "--quantize_uint8=*",
            "--weight_shard_size_bytes=1048576",
        ],
        "layers",
    ),
]


def build_mobilenet(out_dir: str) -> str:
    """MobileNetV2(weights=None) as a tf_keras h5 (built in a child: TF stays out of here)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import keras_models as km; "
        "print(km.mobilenet_v2_h5(sys.argv[2]))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [PYTHON, "-c", code, os.path.join(REPO, "tests", "python"), out_dir],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def ours_cmd() -> list[str]:
    script = os.path.join(os.path.dirname(PYTHON), "tensorflowjs_converter")
    return [script] if os.path.exists(script) else [PYTHON, "-m", "tfjsconv.cli"]


def run_job(cmd: Sequence[str], flags: Sequence[str], src: str, out: str, runs: int):
    results = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "converter"))
        results.append(common.measure([*cmd, *flags, src, out], env=env))
    return results


def compare_outputs(ours: str, ref: str) -> str:
    """Same topology and weights (by name) as the reference? Weight order may differ."""
    sys.path.insert(0, os.path.join(REPO, "converter"))
    from tfjsconv.model_json import load_tfjs_model

    a_json, a = load_tfjs_model(ours)
    b_json, b = load_tfjs_model(ref)
    same_topo = a_json.get("modelTopology") == b_json.get("modelTopology")
    da, db = dict(a), dict(b)
    if sorted(da) != sorted(db):
        return f"topology {'same' if same_topo else 'differs'}; weight names differ"
    diff = max(float(abs(da[k].astype("float64") - db[k].astype("float64")).max(initial=0)) for k in da)
    return f"topology {'same' if same_topo else 'differs'}; {len(da)} weights, max diff {diff:.3g}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="keep models and outputs in this directory")
    args = parser.parse_args(argv)
    reference = os.environ.get("REFERENCE_CONVERTER")
    work = args.keep or tempfile.mkdtemp(prefix="bench-layers-")
    os.makedirs(work, exist_ok=True)
    try:
        h5 = os.path.join(work, "mobilenet_v2.h5")
        if not os.path.exists(h5):
            h5 = build_mobilenet(work)
        layers_in = os.path.join(work, "mnv2_layers")
        shutil.rmtree(layers_in, ignore_errors=True)
        first = run_job(ours_cmd(), JOBS[0][1], h5, layers_in, 1)[0]
        if not first.ok:
            raise SystemExit(f"bench: tfjsconv failed: {first.last_error_line()}")
        rows = []
        for name, flags, kind in JOBS:
            # The reference wants the model.json file itself for layers inputs.
            src = h5 if kind == "h5" else os.path.join(layers_in, "model.json")
            ours = common.summarize(run_job(ours_cmd(), flags, src, os.path.join(work, name), args.runs))
            row = [name, ours["ok_runs"], ours["wall_s"], ours["max_rss_mb"]]
            if reference:
                ref_res = run_job([reference], flags, src, os.path.join(work, name + "_ref"), args.runs)
                ref = common.summarize(ref_res)
                speed = (
                    f"{ref['wall_s'] / ours['wall_s']:.1f}x"
                    if ours["wall_s"] and all(r.ok for r in ref_res)
                    else "n/a"
                )
                rss = f"{ref['max_rss_mb'] / ours['max_rss_mb']:.1f}x" if ours["max_rss_mb"] else "n/a"
                same = (
                    compare_outputs(os.path.join(work, name), os.path.join(work, name + "_ref"))
                    if ref_res[-1].ok
                    else "n/a"
                )
                row += [ref["ok_runs"], ref["wall_s"], ref["max_rss_mb"], speed, rss, same]
            else:
                row += ["-", "-", "-", "-", "-", "-"]
            rows.append(row)
        print(
            f"input: {os.path.basename(h5)} ({os.path.getsize(h5)} bytes), runs={args.runs}, "
            f"reference={'REFERENCE_CONVERTER' if reference else 'not set'}"
        )
        print(
            common.markdown_table(
                [
                    "job",
                    "ok",
                    "tfjsconv wall s",
                    "tfjsconv maxRSS MB",
                    "ref ok",
                    "ref wall s",
                    "ref maxRSS MB",
                    "speedup",
                    "RSS ratio",
                    "vs reference output",
                ],
                rows,
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
