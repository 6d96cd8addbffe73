"""Weights that no output's value needs are not written (``graph/inert_control.py``).

TF2 functions tie every variable read to the outputs with control inputs, so a kernel
read but never used (an unused head, a debugging branch) used to be written to the
shards.  The model below reproduces that; the converted model must hold exactly the
used weights and still predict what TensorFlow predicts, in the real tfjs runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfjsconv import api
from tfjsconv.graph import inert_control
from tfjsconv.options import ConversionOptions

pytestmark = [pytest.mark.tfjs]


def _model(root):
    import tensorflow as tf

    rng = np.random.default_rng(0)

    class UnusedHeads(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.standard_normal((4, 3)).astype(np.float32), name="used")
            self.dead_a = tf.Variable(rng.standard_normal((3, 32)).astype(np.float32), name="dead_a")
            self.dead_b = tf.Variable(rng.standard_normal((32, 32)).astype(np.float32), name="dead_b")
            self.dead_c = tf.Variable(rng.standard_normal((3, 16)).astype(np.float32), name="dead_c")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            y = tf.matmul(x, self.w)
            _ = tf.matmul(tf.matmul(y, self.dead_a), self.dead_b)  # computed, never returned
            side = tf.group(tf.matmul(y, self.dead_c))  # a NoOp the output waits on
            with tf.control_dependencies([side]):
                out = tf.identity(tf.nn.relu(y))
            return {"y": out}

    module = UnusedHeads()
    path = str(root / "dead_sm")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    x = rng.standard_normal((3, 4)).astype(np.float32)
    return path, x, module(x)["y"].numpy()


def test_unreachable_weights_are_not_written(tfjs, tmp_path, monkeypatch):
    path, x, want = _model(tmp_path)
    sizes = {}
    for name, patch in (("before", True), ("after", False)):
        if patch:  # the converter without this pass, for the before/after numbers
            monkeypatch.setattr(inert_control, "drop_inert_control_inputs", lambda g, keep: [])
        else:
            monkeypatch.undo()
        out = tmp_path / name
        api.convert(
            path, str(out), ConversionOptions(input_format="tf_saved_model", output_format="tfjs_graph_model")
        )
        manifest = json.loads((out / "model.json").read_text())["weightsManifest"]
        shapes = sorted(w["shape"] for group in manifest for w in group["weights"])
        sizes[name] = sum((out / p).stat().st_size for group in manifest for p in group["paths"])
        (got,) = tfjs.predict(out, {"x": x}, kind="graph")
        # One 4x3 matmul + relu: tfjs and TF agree to float32 rounding of a 4-term dot product.
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
    print(f"\nweight bytes before {sizes['before']}, after {sizes['after']}")
    assert shapes == [[4, 3]]  # only the used kernel
    assert sizes["after"] == 4 * 3 * 4 < sizes["before"]


def test_control_inputs_that_decide_liveness_stay():
    """A control input from a Switch-fed pivot decides whether a cond branch runs: kept."""
    from tensorflow.core.framework import graph_pb2, node_def_pb2

    g = graph_pb2.GraphDef()
    for name, op, inputs in [
        ("x", "Placeholder", []),
        ("p", "Placeholder", []),
        ("w", "Const", []),
        ("s", "Switch", ["x", "p"]),
        ("pivot", "Identity", ["s:1"]),
        ("c", "Const", ["^pivot"]),
        ("t", "Mul", ["s:1", "c", "^w"]),
        ("f", "Identity", ["s"]),
        ("m", "Merge", ["t", "f"]),
        ("y", "Identity", ["m", "^w"]),
    ]:
        g.node.append(node_def_pb2.NodeDef(name=name, op=op, input=inputs))
    removed = inert_control.drop_inert_control_inputs(g, ["y"])
    nodes = {n.name: list(n.input) for n in g.node}
    assert removed == ["w"]  # only control inputs reached it
    assert nodes["c"] == ["^pivot"] and nodes["t"] == ["s:1", "c"] and nodes["y"] == ["m"]
