"""normalize_bias_add: bias-like Adds after conv/matmul become BiasAdd, same results."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_rewrites_support import assert_pure_and_deterministic, graph_of, node, random, run_graph, serialized

from tfjsconv.graph.rewrites import normalize_bias_add


def _conv(x):
    return tf.nn.conv2d(x, tf.constant(random([3, 3, 2, 4], 1)), 1, "SAME")


def _depthwise(x):
    return tf.nn.depthwise_conv2d(x, tf.constant(random([3, 3, 2, 3], 2)), [1, 1, 1, 1], "VALID")


def _matmul(x, transpose_b=False):
    w = random([5, 2] if transpose_b else [2, 5], 3)
    return tf.linalg.matmul(tf.reshape(x, [-1, 2]), tf.constant(w), transpose_b=transpose_b)


CASES = {
    "conv_add": (lambda x: tf.raw_ops.Add(x=_conv(x), y=tf.constant(random([4], 4))), [2, 4, 4, 2]),
    "conv_addv2": (lambda x: _conv(x) + tf.constant(random([4], 4)), [2, 4, 4, 2]),
    "bias_first": (lambda x: tf.constant(random([4], 4)) + _conv(x), [2, 4, 4, 2]),
    "depthwise": (lambda x: _depthwise(x) + tf.constant(random([6], 5)), [1, 5, 5, 2]),
    "matmul": (lambda x: _matmul(x) + tf.constant(random([5], 6)), [3, 2]),
    "matmul_transpose_b": (lambda x: _matmul(x, True) + tf.constant(random([5], 6)), [3, 2]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_add_becomes_bias_add(case):
    fn, shape = CASES[case]
    graph_def, (x_name,), out = graph_of(fn, shape)
    add = next(n for n in graph_def.node if n.op in ("Add", "AddV2"))
    result = assert_pure_and_deterministic(normalize_bias_add, graph_def)
    bias_add = node(result, add.name)
    assert bias_add.op == "BiasAdd"
    assert bias_add.attr["data_format"].s == b"NHWC"
    producer = node(result, bias_add.input[0])
    assert producer.op in ("Conv2D", "DepthwiseConv2dNative", "MatMul")
    assert node(result, bias_add.input[1]).op == "Const"
    assert [n.name for n in result.node] == [n.name for n in graph_def.node]
    x = random(shape, 7)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), run_graph(graph_def, {x_name: x}, out), rtol=1e-6, atol=1e-6
    )


def _unchanged(fn, shape=(1, 4, 4, 2)):
    graph_def, _, _ = graph_of(fn, list(shape))
    assert serialized(normalize_bias_add(graph_def)) == serialized(graph_def)


def test_other_graphs_unchanged():
    _unchanged(lambda x: tf.nn.relu(_conv(x)))


def test_add_after_non_conv_unchanged():
    _unchanged(lambda x: tf.nn.relu(x) + tf.constant(random([2], 1)))


def test_broadcast_length_one_bias_unchanged():
    # Valid as an Add (broadcast over 4 channels) but not as a BiasAdd.
    _unchanged(lambda x: _conv(x) + tf.constant([0.5], tf.float32))


def test_rank_two_bias_unchanged():
    _unchanged(lambda x: _matmul(x) + tf.constant(random([1, 5], 2)), (3, 2))


def test_non_const_bias_unchanged():
    _unchanged(lambda x: _conv(x) + tf.reduce_sum(x, axis=[0, 1, 2])[:1] * tf.ones([4]))


def test_conv_with_two_consumers_unchanged():
    def fn(x):
        y = _conv(x)
        return (y + tf.constant(random([4], 4))) * y

    _unchanged(fn)


def test_control_inputs_are_kept():
    graph_def, _, _ = graph_of(CASES["conv_addv2"][0], [1, 4, 4, 2])
    add = next(n for n in graph_def.node if n.op == "AddV2")
    add.input.append("^" + graph_def.node[0].name)
    result = normalize_bias_add(graph_def)
    assert list(node(result, add.name).input)[-1] == "^" + graph_def.node[0].name
