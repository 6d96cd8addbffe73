#!/usr/bin/env python3
"""Peak memory of converting a ~400 MB SavedModel to a graph model, ours vs the reference.

Why: a build action converting a big model must not hold several full copies of its
weights at once.  The model is a seeded ``tf.Module`` whose serving function chains four
big MatMul variables (distinct shapes, ~392 MB of float32) on a batch-1 input.  Each
converter runs once as a fresh process (``common.measure``: wall time and that process's
own peak RSS).  "Copies of the weights" is (peak RSS - the converter's own start-up RSS,
i.e. importing TensorFlow and the converter) / model size: 1.0 would mean only the
weights themselves on top of an idle TensorFlow.

Each output is checked: every variable of the SavedModel's checkpoint must come back,
bit-identical, from the written shards (``tfjsconv.weights.read_weights``).

``--stages`` additionally runs our conversion in-process in a child that prints, for each
stage (load, freeze, each grappler run, extract, write), its RSS before/after and its
own peak, to find where memory goes.

    .venv/bin/python bench/bench_large_model.py [--workdir DIR] [--stages] [--no-reference]
    REFERENCE_CONVERTER=/path/to/tensorflowjs_converter .venv/bin/python bench/bench_large_model.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "converter"))

import common  # noqa: E402

PYTHON = common.PYTHON
# (name, shape): distinct shapes so every variable can be found again by its shape.
VARIABLES = [("w0", (2000, 12500)), ("w1", (12500, 2000)), ("w2", (2000, 12000)), ("w3", (12000, 2000))]

_BUILD = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf
path, spec = sys.argv[1], eval(sys.argv[2])
rng = np.random.default_rng(20240601)

class Big(tf.Module):
    def __init__(self):
        super().__init__()
        self.ws = []
        for name, shape in spec:
            w = (rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[0])).astype(np.float32)
            self.ws.append(tf.Variable(w, name=name))
            b = rng.standard_normal((shape[1],), dtype=np.float32) * np.float32(0.1)
            self.ws.append(tf.Variable(b, name=name + "_bias"))
            del w

    @tf.function(input_signature=[tf.TensorSpec([1, spec[0][1][0]], tf.float32, name="x")])
    def serve(self, x):
        h = x
        for i in range(0, len(self.ws), 2):
            h = tf.tanh(tf.matmul(h, self.ws[i]) + self.ws[i + 1])
        return {"y": h}

m = Big()
tf.saved_model.save(m, path, signatures={"serving_default": m.serve})
"""

# Our conversion in-process: RSS before/after each stage and the peak during it (VmHWM,
# reset through /proc/self/clear_refs before the stage; Linux only).
_STAGES = r"""
import sys, time
from tfjsconv import tf_env
tf = tf_env.import_tensorflow()
from tfjsconv.graph import convert, extract, optimize
from tfjsconv import api, weights
from tfjsconv.options import ConversionOptions
t0 = time.perf_counter()

def status():
    with open("/proc/self/status") as f:
        return {l.split(":")[0]: int(l.split()[1]) // 1024 for l in f if l.startswith(("VmRSS:", "VmHWM:"))}

def wrap(mod, name, label):
    fn = getattr(mod, name)
    def inner(*a, **k):
        before = status()["VmRSS"]
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start = time.perf_counter()
        out = fn(*a, **k)
        s = status()
        print(f"| {label} | {time.perf_counter() - start:.1f} | {before} | {s['VmHWM']} | {s['VmRSS']} |", flush=True)
        return out
    setattr(mod, name, inner)

print("| stage | s | RSS before MB | peak during MB | RSS after MB |\n|---|---|---|---|---|")
wrap(tf.saved_model, "load", "tf.saved_model.load")
wrap(convert, "freeze_concrete_function", "freeze (variables -> Consts)")
wrap(optimize, "run_grappler", "grappler run")
wrap(extract, "extract_weights", "extract weights")
wrap(weights, "write_weights", "write shards")
api.convert(sys.argv[1], sys.argv[2], ConversionOptions(input_format="tf_saved_model",
            output_format="tfjs_graph_model", overwrite=True))
"""

_BASELINE_OURS = (
    "from tfjsconv import tf_env; tf_env.import_tensorflow(); import tfjsconv.cli, tfjsconv.graph.convert"
)
_BASELINE_REF = "import tensorflowjs.converters.converter"


def model_bytes() -> int:
    return sum(4 * (a * b + b) for _, (a, b) in VARIABLES)


def _quiet_env() -> dict[str, str]:
    return dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", PYTHONPATH=str(REPO / "converter")
    )


def _run_quietly(cmd: Sequence[str], what: str) -> None:
    """Run a helper child; its TensorFlow start-up noise is shown only if it fails."""
    out = subprocess.run(list(cmd), capture_output=True, text=True, env=_quiet_env())
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-2000:] + out.stderr[-3000:])
        raise SystemExit(f"bench_large_model: {what} failed")
    lines = [line for line in out.stdout.splitlines() if line.startswith("|")]
    if lines:
        print("\n".join(lines))


def build(path: str) -> None:
    _run_quietly([PYTHON, "-c", _BUILD, path, repr(VARIABLES)], "building the SavedModel")


def ref_python(exe: str) -> str:
    """The interpreter of the reference's venv (the console script's shebang)."""
    with open(exe, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if first.startswith("#!"):
        return first[2:].split()[0]
    return os.path.join(os.path.dirname(exe), "python")


def verify(src: str, out: str) -> str:
    """Every checkpoint variable must come back bit-identical (found by its shape)."""
    import numpy as np

    from tfjsconv.model_json import load_model_json
    from tfjsconv.weights import read_weights

    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "r = tf.train.load_checkpoint(sys.argv[1])\n"
        "m = r.get_variable_to_shape_map()\n"
        "ks = sorted(k for k in m if 'VARIABLE_VALUE' in k and len(m[k]) == 2)\n"
        "np.savez(sys.argv[2], **{str(i): r.get_tensor(k) for i, k in enumerate(ks)})\n"
    )
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
        npz = os.path.join(tmp, "vars.npz")
        _run_quietly(
            [PYTHON, "-c", code, os.path.join(src, "variables", "variables"), npz], "reading the checkpoint"
        )
        with np.load(npz) as data:
            expected = [data[k] for k in sorted(data.files)]
    manifest = load_model_json(os.path.join(out, "model.json"))["weightsManifest"]
    got: dict[tuple, list] = {}
    for _, array in read_weights(manifest, out):
        got.setdefault(tuple(array.shape), []).append(array)
    bad = []
    for want in expected:
        if not any(np.array_equal(want, a) for a in got.get(tuple(want.shape), [])):
            bad.append(str(want.shape))
    if len(expected) != len(VARIABLES):
        return f"FAILED: expected {len(VARIABLES)} big variables in the checkpoint, found {len(expected)}"
    return "ok: 4/4 variables bit-identical" if not bad else f"FAILED: {', '.join(bad)} missing or different"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None, help="keep the model and outputs here (default: a temp dir)")
    ap.add_argument("--stages", action="store_true", help="also print our RSS after each conversion stage")
    ap.add_argument("--no-reference", action="store_true", help="measure ours only")
    args = ap.parse_args(argv)

    own_tmp = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_large-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = str(work / "large_sm")
        if not os.path.isfile(os.path.join(src, "saved_model.pb")):
            build(src)
        size_mb = model_bytes() / 2**20
        env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
        ref_exe = (
            None
            if args.no_reference
            else (os.environ.get("REFERENCE_CONVERTER") or common.reference_converter())
        )
        print(f"load average before: {common.load_average()}")

        jobs = [
            (
                "tfjsconv",
                common.ours_saved_model_to_graph(src, str(work / "out_ours")),
                [PYTHON, "-c", _BASELINE_OURS],
                env,
                str(work / "out_ours"),
            )
        ]
        if ref_exe:
            jobs.append(
                (
                    "reference 4.22",
                    common.reference_saved_model_to_graph(ref_exe, src, str(work / "out_ref")),
                    [ref_python(ref_exe), "-c", _BASELINE_REF],
                    None,
                    str(work / "out_ref"),
                )
            )
        rows = []
        walls, peaks = {}, {}
        for name, cmd, base_cmd, job_env, out in jobs:
            base = common.measure(base_cmd, env=job_env)
            shutil.rmtree(out, ignore_errors=True)
            res = common.measure(cmd, env=job_env)
            if not res.ok:
                rows.append([name, "failed", "-", "-", "-", "-", res.last_error_line()])
                continue
            out_mb = sum(s for _, s in common.files_with_sizes(out)) / 2**20
            copies = (res.max_rss_mb - base.max_rss_mb) / size_mb
            walls[name], peaks[name] = res.wall_s, res.max_rss_mb
            rows.append(
                [
                    name,
                    f"{res.wall_s:.1f}",
                    f"{res.max_rss_mb:.0f}",
                    f"{base.max_rss_mb:.0f}",
                    f"{out_mb:.1f}",
                    f"{copies:.2f}",
                    verify(src, out),
                ]
            )
        print(
            f"\nSavedModel -> tfjs_graph_model, {size_mb:.0f} MB of float32 weights "
            f"(4 MatMul variables + biases), one fresh process each\n"
        )
        print(
            common.markdown_table(
                [
                    "converter",
                    "wall s",
                    "peak RSS MB",
                    "start-up RSS MB",
                    "output MB",
                    "copies of the weights at peak",
                    "weights check",
                ],
                rows,
            )
        )
        if "tfjsconv" in walls and "reference 4.22" in walls:
            print(
                f"\nours / reference: time {walls['tfjsconv'] / walls['reference 4.22']:.2f}x, "
                f"peak RSS {peaks['tfjsconv'] / peaks['reference 4.22']:.2f}x"
            )
        if args.stages:
            print("\nOur conversion in-process, stage by stage:\n")
            shutil.rmtree(work / "out_stages", ignore_errors=True)
            _run_quietly([PYTHON, "-c", _STAGES, src, str(work / "out_stages")], "the staged conversion")
        print(f"\nload average after: {common.load_average()}")
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
