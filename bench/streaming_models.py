"""Build multi-GB SavedModels without holding their weights, and check converted shards.

``build(path, layers, dim, variant)`` writes a SavedModel whose serving function is
``layers`` x (``x @ W_i + b_i``, tanh), ``W_i`` of shape ``[dim, dim]`` float32, in one
of three ``VARIANTS``: ``plain``; ``scaled``, a constant scale ``c_i`` after each MatMul
(``(x @ W_i) * c_i``); ``conv_scaled``, each MatMul a 1x1 ``Conv2D`` (``W_i`` of shape
``[1, 1, dim, dim]``) times ``c_i``, which grappler folds into the filter.
The builder itself streams (it must fit a machine with less RAM than the model): the
module's variables are ``UninitializedVariable``s (shapes only), ``saved_model.pb`` is
written without a checkpoint, and the checkpoint is written one seeded tensor at a time
(``SaveV2`` per tensor, then ``MergeV2Checkpoints``), with the object graph of a
same-named tiny twin (``tf.train.Checkpoint``), so ``tf.saved_model.load`` restores it.

``check(model_dir, saved_model, variant)`` reads the converted weights one at a time
(never the whole model) and compares each with its checkpoint variable (found by shape
and, for the square kernels, by order; a ``conv_scaled`` kernel times its ``c_i`` in
float32, what folding it gives for these normal-range values): bit-identical for
float32, within ``scale/2`` for uint8/uint16 and within float16's half-ulp (relative
2**-11) for float16.

Run as a script: ``python streaming_models.py build PATH LAYERS DIM VARIANT`` or
``python streaming_models.py check MODEL_DIR SAVED_MODEL VARIANT``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile

import numpy as np

SEED = 20261130
VARIANTS = ("plain", "scaled", "conv_scaled")


def _value(name: str, shape: tuple[int, ...], index: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, index, len(shape)])
    if len(shape) >= 2:
        return (rng.standard_normal(shape, dtype=np.float32) / np.float32(math.sqrt(shape[-2]))).astype(
            np.float32
        )
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)).astype(np.float32)


def _scale(i: int, layers: int) -> np.float32:
    """The constant after kernel ``i`` (scaled variants)."""
    return np.float32(0.5 + i / (4.0 * layers))


def build(path: str, layers: int, dim: int, variant: str) -> None:
    import tensorflow as tf
    from tensorflow.python.ops.resource_variable_ops import UninitializedVariable
    from tensorflow.python.saved_model import save as save_lib

    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {VARIANTS}")
    conv = variant == "conv_scaled"
    kernel = (1, 1, dim, dim) if conv else (dim, dim)
    names = [(f"w{i}", kernel) for i in range(layers)] + [(f"b{i}", (dim,)) for i in range(layers)]

    class Big(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, shape in names:
                setattr(self, name, UninitializedVariable(shape=shape, dtype=tf.float32, name=name))

        @tf.function(input_signature=[tf.TensorSpec([1, dim], tf.float32, name="x")])
        def serve(self, x):
            h = tf.reshape(x, [1, 1, 1, dim]) if conv else x
            for i in range(layers):
                w = getattr(self, f"w{i}")
                m = tf.nn.conv2d(h, w, 1, "VALID") if conv else tf.matmul(h, w)
                if variant != "plain":
                    m = m * tf.constant(_scale(i, layers))
                h = tf.tanh(m + getattr(self, f"b{i}"))
            return {"y": tf.reshape(h, [1, dim])}

    module = Big()
    os.makedirs(path, exist_ok=True)
    save_lib.save_and_return_nodes(
        module, path, signatures={"serving_default": module.serve}, experimental_skip_checkpoint=True
    )
    with tempfile.TemporaryDirectory(dir=path) as tmp:
        twin = tf.train.Checkpoint(**{name: tf.Variable(tf.zeros([1]), name=name) for name, _ in names})
        twin_prefix = twin.write(os.path.join(tmp, "twin"))
        reader = tf.train.load_checkpoint(twin_prefix)
        keys = {
            key.split("/")[0]: key for key in reader.get_variable_to_shape_map() if "VARIABLE_VALUE" in key
        }
        graph_key = "_CHECKPOINTABLE_OBJECT_GRAPH"
        prefixes = [os.path.join(tmp, "graph")]
        tf.raw_ops.SaveV2(
            prefix=prefixes[0],
            tensor_names=[graph_key],
            shape_and_slices=[""],
            tensors=[tf.constant(reader.get_tensor(graph_key))],
        )
        for index, (name, shape) in enumerate(names):
            value = _value(name, shape, index)
            prefix = os.path.join(tmp, f"v{index}")
            tf.raw_ops.SaveV2(
                prefix=prefix, tensor_names=[keys[name]], shape_and_slices=[""], tensors=[tf.constant(value)]
            )
            del value
            prefixes.append(prefix)
        os.makedirs(os.path.join(path, "variables"), exist_ok=True)
        tf.raw_ops.MergeV2Checkpoints(
            checkpoint_prefixes=prefixes,
            destination_prefix=os.path.join(path, "variables", "variables"),
            delete_old_dirs=True,
        )


def _weight_reader(model_dir: str):
    """Yield (entry, stored array) one weight at a time, reading the shards as a stream."""
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
        model = json.load(f)
    for group in model["weightsManifest"]:
        files = [open(os.path.join(model_dir, p), "rb") for p in group["paths"]]
        try:
            current = 0

            def read(n: int) -> bytes:
                nonlocal current
                parts = []
                while n:
                    chunk = files[current].read(n)  # noqa: B023 - read() runs within this iteration only
                    if not chunk:
                        current += 1
                        continue
                    parts.append(chunk)
                    n -= len(chunk)
                return b"".join(parts)

            for entry in group["weights"]:
                q = entry.get("quantization")
                storage = {"uint8": "|u1", "uint16": "<u2", "float16": "<f2"}[q["dtype"]] if q else "<f4"
                count = math.prod(entry["shape"])
                data = np.frombuffer(read(count * np.dtype(storage).itemsize), dtype=storage)
                yield entry, data.reshape(entry["shape"])
                del data
        finally:
            for f in files:
                f.close()


def check(model_dir: str, saved_model: str, variant: str = "plain") -> str:
    """Every checkpoint variable has a converted weight that matches it (see module doc)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(saved_model, "variables", "variables"))
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items() if "VARIABLE_VALUE" in k}
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for key in sorted(shapes, key=lambda k: int(k.split("/")[0][1:])):
        by_shape.setdefault(shapes[key], []).append(key)
    matched, worst = 0, 0.0
    for entry, stored in _weight_reader(model_dir):
        candidates = by_shape.get(tuple(entry["shape"]), [])
        if not candidates:
            continue
        key = candidates.pop(0)
        want = reader.get_tensor(key)
        if variant == "conv_scaled" and want.ndim == 4:
            want = want * _scale(int(key.split("/")[0][1:]), len(shapes) // 2)
        q = entry.get("quantization")
        if q is None:
            ok = np.array_equal(stored, want)
        elif q["dtype"] == "float16":
            got = stored.astype(np.float32)
            ok = bool(np.all(np.abs(got - want) <= np.abs(want) * 2.0**-11 + 2.0**-25))
        else:
            got = stored.astype(np.float64) * q["scale"] + q["min"]
            err = float(np.max(np.abs(got - want.astype(np.float64))))
            worst = max(worst, err / q["scale"])
            ok = err <= q["scale"] / 2 * (1 + 1e-9)
        if not ok:
            return f"FAILED: {entry['name']} differs from {key}"
        matched += 1
        del want
    if matched != len(shapes):
        return f"FAILED: {matched} of {len(shapes)} checkpoint variables found in the output"
    return f"ok: {matched}/{len(shapes)} tensors" + (f", max err {worst:.3f} x scale" if worst else "")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if sys.argv[1] == "build":
        build(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        print(check(sys.argv[2], sys.argv[3], sys.argv[4]))
