#!/usr/bin/env python3
"""Peak memory of the Keras h5 paths on a multi-GB h5 (weights stream).

Why: h5 -> layers and layers -> layers (re-quantize / re-shard) must hold about one
weight at a time (target: peak RSS <= 2 x the largest tensor + the interpreter), and
h5 -> graph (tf_keras builds the model with uninitialized variables, the writer reads
each kernel from its h5 dataset) about one weight above the TensorFlow + tf_keras
baseline.  The same model as a Keras 3 ``.keras`` zip goes to layers (its weights read
in place inside the zip) and to graph (Keras 3 builds the model, uninitialized).  The
h5 is written one dataset at a time with h5py (a Keras 2 ``Sequential`` of ``layers``
Dense layers of ``DIM`` x ``DIM`` float32, 300 MB kernels), so building it fits too.
Each conversion is one fresh process (``common.measure``) under an address-space cap;
"copies of largest" = (peak RSS - the start-up RSS of ``import tfjsconv.cli``; for graph
outputs, of importing TensorFlow and tf_keras too) / 300 MB.

    .venv/bin/python bench/bench_streaming_layers.py [--gb 2.4] [--cap-gb 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

DIM = 8660
TENSOR_MB = DIM * DIM * 4 / 2**20


def build_h5(path: Path, layers: int) -> None:
    import h5py

    config = {
        "class_name": "Sequential",
        "config": {
            "name": "big",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_input_shape": [None, DIM],
                        "dtype": "float32",
                        "sparse": False,
                        "name": "x",
                    },
                }
            ]
            + [
                {
                    "class_name": "Dense",
                    "config": {
                        "name": f"d{i}",
                        "trainable": True,
                        "dtype": "float32",
                        "units": DIM,
                        "activation": "tanh",
                        "use_bias": True,
                    },
                }
                for i in range(layers)
            ],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["backend"] = "tensorflow"
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [f"d{i}".encode() for i in range(layers)]
        for i in range(layers):
            group = weights.create_group(f"d{i}")
            group.attrs["weight_names"] = [f"d{i}/kernel:0".encode(), f"d{i}/bias:0".encode()]
            inner = group.create_group(f"d{i}")
            rng = np.random.default_rng(i)
            inner.create_dataset("kernel:0", data=rng.standard_normal((DIM, DIM), dtype=np.float32))
            inner.create_dataset("bias:0", data=rng.standard_normal((DIM,), dtype=np.float32))


def _keras3_config(layers: int) -> dict:
    """config.json of a Keras 3 ``Sequential`` of ``layers`` Dense(DIM, tanh) layers: Keras
    writes it for a tiny twin (dimension 7), which is then widened to ``DIM``."""
    import keras

    tiny = keras.Sequential(
        [keras.Input((7,), name="x")]
        + [keras.layers.Dense(7, activation="tanh", name=f"d{i}") for i in range(layers)],
        name="big",
    )

    def widen(value):
        if isinstance(value, dict):
            return {k: (DIM if k == "units" and v == 7 else widen(v)) for k, v in value.items()}
        if isinstance(value, list):
            return (
                [DIM if v == 7 else widen(v) for v in value] if None in value else [widen(v) for v in value]
            )
        return value

    return widen(json.loads(tiny.to_json()))


def build_keras3(path: Path, layers: int) -> None:
    """A ``.keras`` zip of the same model: Keras 3's weights layout (``layers/dense_<i>/vars``)
    written one dataset at a time with h5py, stored uncompressed in the zip as Keras does."""
    import zipfile

    import h5py

    weights = path.with_suffix(".weights.h5")
    with h5py.File(weights, "w") as f:
        f.create_group("layers")
        for i in range(layers):
            group = f["layers"].create_group("dense" if i == 0 else f"dense_{i}").create_group("vars")
            group.attrs["name"] = f"d{i}"
            rng = np.random.default_rng(i)
            group.create_dataset("0", data=rng.standard_normal((DIM, DIM), dtype=np.float32))
            group.create_dataset("1", data=rng.standard_normal((DIM,), dtype=np.float32))
        f.create_group("vars").attrs["name"] = "big"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(_keras3_config(layers)))
        archive.write(weights, "model.weights.h5")
    weights.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(REPO / ".cache" / "bench_streaming_layers"))
    ap.add_argument("--gb", type=float, default=2.4, help="weights in the h5 (300 MB per layer)")
    ap.add_argument("--cap-gb", type=float, default=3.0)
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    layers = max(1, round(args.gb * 2**30 / (DIM * DIM * 4)))
    h5 = work / "big.h5"
    keras3 = work / "big.keras"
    try:
        build_h5(h5, layers)
        build_keras3(keras3, layers)
        env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
        cli = [common.PYTHON, "-m", "tfjsconv.cli", "--quiet"]
        cap = ["prlimit", f"--as={int(args.cap_gb * 2**30)}", "--"]
        base = common.measure(
            [common.PYTHON, "-c", "import tfjsconv.cli, tfjsconv.layers.convert, h5py"], env=env
        )
        tf_base = common.measure(
            [
                common.PYTHON,
                "-c",
                "from tfjsconv import tf_env; tf_env.import_tensorflow(); import tfjsconv.cli, "
                "tfjsconv.graph.convert, tf_keras, h5py",
            ],
            env=env,
        )
        jobs = [
            ("h5 -> layers", ["--input_format=keras", str(h5), str(work / "layers")]),
            (
                "h5 -> layers, uint8",
                ["--input_format=keras", "--quantize_uint8", str(h5), str(work / "layers_u8")],
            ),
            (
                "layers -> layers, uint8, 16 MB shards",
                [
                    "--input_format=tfjs_layers_model",
                    "--output_format=tfjs_layers_model",
                    "--quantize_uint8",
                    "--weight_shard_size_bytes=16777216",
                    str(work / "layers" / "model.json"),
                    str(work / "relayers"),
                ],
            ),
            (
                "h5 -> graph",
                ["--input_format=keras", "--output_format=tfjs_graph_model", str(h5), str(work / "graph")],
            ),
            (
                "h5 -> graph, uint8",
                [
                    "--input_format=keras",
                    "--output_format=tfjs_graph_model",
                    "--quantize_uint8",
                    str(h5),
                    str(work / "graph_u8"),
                ],
            ),
            (".keras -> layers", ["--input_format=keras_keras", str(keras3), str(work / "k3_layers")]),
            (
                ".keras -> graph",
                [
                    "--input_format=keras_keras",
                    "--output_format=tfjs_graph_model",
                    str(keras3),
                    str(work / "k3_graph"),
                ],
            ),
            (
                ".keras -> graph, uint8",
                [
                    "--input_format=keras_keras",
                    "--output_format=tfjs_graph_model",
                    "--quantize_uint8",
                    str(keras3),
                    str(work / "k3_graph_u8"),
                ],
            ),
        ]
        rows = []
        for name, flags in jobs:
            res = common.measure(cap + cli + flags, env=env)
            baseline = tf_base if "graph" in name else base
            copies = (res.max_rss_mb - baseline.max_rss_mb) / TENSOR_MB
            rows.append(
                [
                    name,
                    f"{res.wall_s:.1f}",
                    f"{res.max_rss_mb:.0f}",
                    f"{copies:.2f}",
                    "ok" if res.ok else "FAILED: " + res.last_error_line(),
                ]
            )
            print(rows[-1], flush=True)
        print(
            f"\n{layers * TENSOR_MB / 1024:.1f} GB Keras h5 ({layers} x {TENSOR_MB:.0f} MB kernels), "
            f"cap {args.cap_gb:g} GB address space, start-up RSS {base.max_rss_mb:.0f} MB "
            f"({tf_base.max_rss_mb:.0f} MB with TensorFlow and tf_keras)\n"
        )
        print(common.markdown_table(["job", "wall s", "peak RSS MB", "copies of largest", "result"], rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
