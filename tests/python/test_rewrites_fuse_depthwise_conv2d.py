"""fuse_depthwise_conv2d: DW (+BiasAdd) (+act) becomes tfjs's FusedDepthwiseConv2dNative."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_rewrites_support import (
    assert_pure_and_deterministic,
    graph_of,
    node,
    ops,
    random,
    run_graph,
    serialized,
)

from tfjsconv.graph.rewrites import fuse_depthwise_conv2d

W = random([3, 3, 2, 2], 1)
B = random([4], 2)


def _dw(x):
    return tf.raw_ops.DepthwiseConv2dNative(
        input=x,
        filter=tf.constant(W, name="w"),
        strides=[1, 2, 2, 1],
        padding="SAME",
        dilations=[1, 1, 1, 1],
        name="dw",
    )


def _bias(y):
    return tf.nn.bias_add(y, tf.constant(B, name="b"), name="bias")


def _expected(x, bias: bool, act):
    """Reference result computed with TF primitives directly (not from any GraphDef)."""
    y = tf.nn.depthwise_conv2d(x, W, [1, 2, 2, 1], "SAME")
    if bias:
        y = y + B
    return (act(y) if act is not None else y).numpy()


ACTS = {"Relu": tf.nn.relu, "Relu6": tf.nn.relu6, "Elu": tf.nn.elu}
CASES = {
    **{f"bias_{a}": (True, a) for a in ACTS},
    **{f"act_{a}": (False, a) for a in ACTS},
    "bias_only": (True, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fusion(case):
    bias, act = CASES[case]

    def fn(x):
        y = _dw(x)
        y = _bias(y) if bias else y
        y = getattr(tf.raw_ops, act)(features=y, name="act") if act else y
        return tf.identity(y, name="out")

    graph_def, (x_name,), _ = graph_of(fn, [2, 6, 6, 2])
    result = assert_pure_and_deterministic(fuse_depthwise_conv2d, graph_def)
    name = "act" if act else "bias"
    fused = node(result, name)
    assert fused.op == "FusedDepthwiseConv2dNative"
    assert list(fused.input) == (["x", "w", "b"] if bias else ["x", "w"])
    assert list(fused.attr["fused_ops"].list.s) == [b"BiasAdd" if bias else b"NoOp"] + (
        [act.encode()] if act else []
    )
    assert fused.attr["num_args"].i == (1 if bias else 0)
    original = node(graph_def, "dw")
    for attr in ("strides", "padding", "dilations", "data_format", "T"):
        assert fused.attr[attr] == original.attr[attr], attr
    assert not {"DepthwiseConv2dNative", "BiasAdd", "Relu", "Relu6", "Elu"} & set(ops(result))
    non_const = [o for o in ops(result) if o != "Const"]
    assert non_const == ["Placeholder", "FusedDepthwiseConv2dNative", "Identity", "Identity"]
    x = random([2, 6, 6, 2], 3)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, "out:0"), _expected(x, bias, ACTS.get(act)), rtol=1e-5, atol=1e-5
    )


def test_shared_bias_add_fuses_only_the_bias():
    def fn(x):
        y = _bias(_dw(x))
        return tf.nn.relu(y, name="act") + y

    graph_def, (x_name,), out = graph_of(fn, [1, 6, 6, 2])
    result = fuse_depthwise_conv2d(graph_def)
    assert list(node(result, "bias").attr["fused_ops"].list.s) == [b"BiasAdd"]
    assert node(result, "act").op == "Relu"
    x = random([1, 6, 6, 2], 4)
    y = _expected(x, True, None)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), np.maximum(y, 0) + y, rtol=1e-5, atol=1e-5
    )


def _unchanged(fn, shape=(1, 6, 6, 2)):
    graph_def, _, _ = graph_of(fn, list(shape))
    assert serialized(fuse_depthwise_conv2d(graph_def)) == serialized(graph_def)


def test_no_depthwise_no_change():
    _unchanged(lambda x: tf.nn.relu(x + 1.0))


def test_depthwise_with_two_consumers_not_fused():
    def fn(x):
        y = _dw(x)
        return tf.nn.relu(y) * y

    _unchanged(fn)


def test_other_activation_not_fused():
    _unchanged(lambda x: tf.nn.sigmoid(_dw(x)))


def test_nchw_not_fused():
    def fn(x):
        y = tf.raw_ops.DepthwiseConv2dNative(
            input=x, filter=tf.constant(W), strides=[1, 1, 1, 1], padding="SAME", data_format="NCHW"
        )
        return tf.nn.relu(y)

    _unchanged(fn, (1, 2, 6, 6))


def test_protected_depthwise_not_fused():
    graph_def, _, _ = graph_of(lambda x: tf.nn.relu(_bias(_dw(x))), [1, 6, 6, 2])
    assert serialized(fuse_depthwise_conv2d(graph_def, keep=["dw"])) == serialized(graph_def)
