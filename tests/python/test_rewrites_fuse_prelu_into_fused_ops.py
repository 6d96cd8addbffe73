"""fuse_prelu_into_fused_ops: Prelu after a [BiasAdd]-fused op becomes its activation."""

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
    remap,
    run_graph,
    serialized,
)

from tfjsconv.graph.rewrites import (
    fuse_depthwise_conv2d,
    fuse_prelu,
    fuse_prelu_into_fused_ops,
)

ALPHA = np.array([0.2, -0.1, 0.5, 1.5], np.float32)


def _prelu(y):
    return tf.add(tf.nn.relu(y), tf.constant(-ALPHA, name="alpha") * tf.nn.relu(-y), name="prelu")


def _conv(x):
    y = tf.nn.conv2d(x, tf.constant(random([3, 3, 2, 4], 1)), 1, "SAME")
    return tf.nn.bias_add(y, tf.constant(random([4], 2)))


def _depthwise(x):
    y = tf.nn.depthwise_conv2d(x, tf.constant(random([3, 3, 2, 2], 3)), [1, 1, 1, 1], "SAME")
    return tf.nn.bias_add(y, tf.constant(random([4], 4)))


def _matmul(x):
    return tf.nn.bias_add(tf.linalg.matmul(x, tf.constant(random([3, 4], 5))), tf.constant(random([4], 6)))


def _expected(y):
    return np.where(y >= 0, y, ALPHA * y)


CASES = {
    "_FusedConv2D": (_conv, [2, 5, 5, 2]),
    "FusedDepthwiseConv2dNative": (_depthwise, [2, 5, 5, 2]),
    "_FusedMatMul": (_matmul, [3, 3]),
}


def _pipeline(fn, shape):
    """The converter's order: remap, fuse_prelu, fuse_depthwise_conv2d, then the rewrite under test."""
    graph_def, (x_name,), out = graph_of(lambda x: tf.identity(_prelu(fn(x)), name="out"), shape)
    prepared = fuse_depthwise_conv2d(fuse_prelu(remap(graph_def, out)))
    return graph_def, prepared, x_name, out


@pytest.mark.parametrize("op", sorted(CASES))
def test_prelu_joins_fused_op(op):
    fn, shape = CASES[op]
    graph_def, prepared, x_name, out = _pipeline(fn, shape)
    fused_before = next(n for n in prepared.node if n.op == op)
    assert list(fused_before.attr["fused_ops"].list.s) == [b"BiasAdd"]
    result = assert_pure_and_deterministic(fuse_prelu_into_fused_ops, prepared)
    fused = node(result, "prelu")
    assert fused.op == op
    assert list(fused.attr["fused_ops"].list.s) == [b"BiasAdd", b"Prelu"]
    assert fused.attr["num_args"].i == 2
    assert list(fused.input) == [*fused_before.input, "alpha"]
    assert "Prelu" not in ops(result) and fused_before.name not in {n.name for n in result.node}
    for key in ("T", "strides", "padding", "transpose_a", "transpose_b"):
        assert fused.attr[key] == fused_before.attr[key], key
    x = random(shape, 7)
    pre_activation = run_graph(graph_of(fn, shape)[0], {x_name: x}, graph_of(fn, shape)[2])
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), _expected(pre_activation), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), run_graph(graph_def, {x_name: x}, out), rtol=1e-5, atol=1e-5
    )


def test_fused_op_with_activation_already_is_left_alone():
    graph_def, (x_name,), out = graph_of(
        lambda x: tf.identity(_prelu(tf.nn.relu(_conv(x))), name="out"), [1, 5, 5, 2]
    )
    prepared = fuse_prelu(remap(graph_def, out))
    fused = next(n for n in prepared.node if n.op == "_FusedConv2D")
    assert list(fused.attr["fused_ops"].list.s) == [b"BiasAdd", b"Relu"]
    assert serialized(fuse_prelu_into_fused_ops(prepared)) == serialized(prepared)


def test_fused_op_with_two_consumers_is_left_alone():
    def fn(x):
        y = _conv(x)
        return tf.identity(_prelu(y) + y, name="out")

    graph_def, _, out = graph_of(fn, [1, 5, 5, 2])
    prepared = fuse_prelu(remap(graph_def, out))
    assert "_FusedConv2D" in ops(prepared) and "Prelu" in ops(prepared)
    assert serialized(fuse_prelu_into_fused_ops(prepared)) == serialized(prepared)


def test_no_prelu_no_change():
    graph_def, _, out = graph_of(lambda x: tf.identity(_conv(x), name="out"), [1, 5, 5, 2])
    prepared = remap(graph_def, out)
    assert serialized(fuse_prelu_into_fused_ops(prepared)) == serialized(prepared)
