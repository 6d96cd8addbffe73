"""The rewrites' tfjs-only ops, end to end: Keras -> SavedModel -> tfjsconv -> real tfjs 4.22.

The unit tests check each rewrite against TensorFlow; these check that what they emit
(``FusedDepthwiseConv2dNative`` with ``NoOp``/``BiasAdd`` + activation, ``Prelu``, and
``Prelu`` inside fused ops) is what the tfjs runtime loads and computes correctly.
Ground truth is the Keras model's own prediction.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from test_rewrites_support import random

from tfjsconv import api
from tfjsconv.options import ConversionOptions

pytestmark = [pytest.mark.tfjs]


def _keras():
    import tf_keras

    tf_keras.utils.set_random_seed(4321)
    return tf_keras


def _with_bn_stats(model):
    """Non-trivial moving statistics so that folding mistakes show in the outputs."""
    import tf_keras

    rng = np.random.default_rng(99)
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c),
                    rng.normal(0, 0.3, c),
                    rng.normal(0, 0.3, c),
                    rng.uniform(0.5, 2.0, c),
                ]
            )
    return model


def conv_bn_prelu():
    k = _keras()
    inp = k.Input((8, 8, 3), name="img")
    h = k.layers.Conv2D(4, 3, padding="same", use_bias=False)(inp)
    h = k.layers.BatchNormalization()(h)
    h = k.layers.PReLU(shared_axes=[1, 2], alpha_initializer=k.initializers.RandomUniform(0.05, 0.5))(h)
    return _with_bn_stats(k.Model(inp, k.layers.Flatten()(h)))


def depthwise_bn_relu6_then_prelu():
    k = _keras()
    inp = k.Input((8, 8, 3), name="img")
    h = k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False)(inp)
    h = k.layers.BatchNormalization()(h)
    h = k.layers.ReLU(6.0)(h)
    h = k.layers.DepthwiseConv2D(3, padding="same", bias_initializer="random_normal")(h)
    h = k.layers.PReLU(shared_axes=[1, 2], alpha_initializer=k.initializers.RandomUniform(0.05, 0.5))(h)
    return _with_bn_stats(k.Model(inp, k.layers.Flatten()(h)))


def depthwise_elu_no_bias():
    k = _keras()
    inp = k.Input((6, 6, 2), name="img")
    h = k.layers.DepthwiseConv2D(3, padding="same", use_bias=False, activation="elu")(inp)
    return k.Model(inp, k.layers.Flatten()(h))


def dense_prelu_and_bare_prelu():
    k = _keras()
    inp = k.Input((5,), name="x")
    h = k.layers.Dense(6, bias_initializer="random_normal")(inp)
    h = k.layers.PReLU(alpha_initializer=k.initializers.RandomUniform(0.05, 0.5))(h)
    h = k.layers.Multiply()([h, h])
    out = k.layers.PReLU(alpha_initializer=k.initializers.Constant(0.3))(h - 1.0)
    return k.Model(inp, out)


def _fused_ops(node: dict) -> list[bytes]:
    return [
        base64.b64decode(s) for s in node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    ]


def _convert(model, tmp_path: Path, x: np.ndarray):
    saved = tmp_path / "sm"
    model.save(str(saved), save_format="tf", include_optimizer=False)
    out = tmp_path / "tfjs"
    api.convert(
        str(saved),
        str(out),
        ConversionOptions(input_format="tf_saved_model", output_format="tfjs_graph_model"),
    )
    topology = json.loads((out / "model.json").read_text())["modelTopology"]
    nodes = [(n["op"], _fused_ops(n)) for n in topology["node"]]
    return out, nodes, model(x, training=False).numpy()


def _check_runtime(tfjs, out: Path, x: np.ndarray, want: np.ndarray) -> None:
    for backend in ("cpu", "wasm"):
        answer = tfjs.run(out, x, kind="graph", backend=backend)
        (got,) = answer["arrays"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=backend)


CASES: dict[str, tuple] = {
    "conv_bn_prelu": (conv_bn_prelu, (2, 8, 8, 3), [("_FusedConv2D", [b"BiasAdd", b"Prelu"])]),
    "depthwise_bn_relu6_then_prelu": (
        depthwise_bn_relu6_then_prelu,
        (2, 8, 8, 3),
        [
            ("FusedDepthwiseConv2dNative", [b"BiasAdd", b"Relu6"]),
            ("FusedDepthwiseConv2dNative", [b"BiasAdd", b"Prelu"]),
        ],
    ),
    "depthwise_elu_no_bias": (
        depthwise_elu_no_bias,
        (2, 6, 6, 2),
        [("FusedDepthwiseConv2dNative", [b"NoOp", b"Elu"])],
    ),
    "dense_prelu_and_bare_prelu": (
        dense_prelu_and_bare_prelu,
        (3, 5),
        [
            ("_FusedMatMul", [b"BiasAdd", b"Prelu"]),
            ("Prelu", []),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tfjs_runs_rewritten_model(tfjs, tmp_path, case):
    build, shape, fused = CASES[case]
    x = random(shape, 5)
    out, nodes, want = _convert(build(), tmp_path, x)
    for expected in fused:
        assert expected in nodes, nodes
    forbidden = {"FusedBatchNorm", "FusedBatchNormV3", "DepthwiseConv2dNative", "Relu", "Neg", "Relu6", "Elu"}
    assert not forbidden & {op for op, _ in nodes}, nodes
    _check_runtime(tfjs, out, x, want)
