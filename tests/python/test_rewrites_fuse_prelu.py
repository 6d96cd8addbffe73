"""fuse_prelu: relu(x) + (-alpha) * relu(-x) becomes tfjs's Prelu(x, alpha)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_rewrites_support import (
    assert_pure_and_deterministic,
    const_value,
    graph_of,
    node,
    ops,
    random,
    run_graph,
    serialized,
)

from tfjsconv.graph.rewrites import fuse_prelu

ALPHA = np.array([0.1, 0.25, -0.5, 2.0], np.float32)


def _prelu_pattern(x, alpha=ALPHA, add_swapped=False, mul_swapped=False):
    neg_alpha = tf.constant(-alpha, name="neg_alpha")
    relu_neg = tf.nn.relu(-x)
    neg = relu_neg * neg_alpha if mul_swapped else neg_alpha * relu_neg
    pos = tf.nn.relu(x)
    return tf.add(neg, pos, name="prelu") if add_swapped else tf.add(pos, neg, name="prelu")


def _expected(x, alpha=ALPHA):
    return np.where(x >= 0, x, alpha * x)


@pytest.mark.parametrize("add_swapped", [False, True])
@pytest.mark.parametrize("mul_swapped", [False, True])
def test_pattern_becomes_prelu(add_swapped, mul_swapped):
    graph_def, (x_name,), out = graph_of(
        lambda x: tf.sigmoid(_prelu_pattern(x * 2.0, add_swapped=add_swapped, mul_swapped=mul_swapped)),
        [3, 4],
    )
    result = assert_pure_and_deterministic(fuse_prelu, graph_def)
    prelu = node(result, "prelu")
    assert prelu.op == "Prelu" and "T" not in prelu.attr
    assert list(prelu.input) == ["mul", "neg_alpha"]
    np.testing.assert_array_equal(const_value(result, "neg_alpha"), ALPHA)
    assert {"Relu", "Neg"}.isdisjoint(ops(result))
    assert ops(result).count("Mul") == 1  # only x * 2.0 is left
    x = random([3, 4], 1)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), 1 / (1 + np.exp(-_expected(2 * x))), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        run_graph(graph_def, {x_name: x}, out), run_graph(result, {x_name: x}, out), rtol=1e-6, atol=1e-6
    )


def test_add_as_fetch_keeps_its_name():
    graph_def = graph_of(lambda x: _prelu_pattern(x), [2, 4])[0]
    result = fuse_prelu(graph_def)
    x = random([2, 4], 2)
    np.testing.assert_allclose(run_graph(result, {"x:0": x}, "prelu:0"), _expected(x), rtol=1e-6, atol=1e-7)


def test_shared_positive_relu_survives():
    def fn(x):
        return _prelu_pattern(x) * tf.nn.relu(x)

    graph_def, (x_name,), out = graph_of(fn, [2, 4])
    result = fuse_prelu(graph_def)
    assert "Prelu" in ops(result) and ops(result).count("Relu") == 1
    x = random([2, 4], 3)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), _expected(x) * np.maximum(x, 0), rtol=1e-6, atol=1e-7
    )


def test_shared_alpha_const_is_not_negated_in_place():
    graph_def, (x_name,), out = graph_of(lambda x: _prelu_pattern(x) + tf.constant(0.0), [2, 4])
    # Make the -alpha Const a second reader's input: out = prelu + neg_alpha.
    add = next(n for n in graph_def.node if n.op == "AddV2" and n.name != "prelu")
    add.input[1] = "neg_alpha"
    result = assert_pure_and_deterministic(fuse_prelu, graph_def)
    assert list(node(result, "prelu").input) == ["x", "neg_alpha_alpha"]
    np.testing.assert_array_equal(const_value(result, "neg_alpha"), -ALPHA)
    x = random([2, 4], 4)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out), _expected(x) - ALPHA, rtol=1e-6, atol=1e-6
    )


def test_two_prelus():
    def fn(x):
        t = _prelu_pattern(x) - 1.0
        return tf.nn.relu(t) + tf.constant(-0.3) * tf.nn.relu(-t)

    graph_def, (x_name,), out = graph_of(fn, [2, 4])
    result = assert_pure_and_deterministic(fuse_prelu, graph_def)
    assert ops(result).count("Prelu") == 2 and "Relu" not in ops(result)
    x = random([2, 4], 5)
    np.testing.assert_allclose(
        run_graph(result, {x_name: x}, out),
        _expected(_expected(x) - 1.0, np.float32(0.3)),
        rtol=1e-6,
        atol=1e-6,
    )


def _unchanged(fn, shape=(2, 4)):
    graph_def, _, _ = graph_of(fn, list(shape))
    assert serialized(fuse_prelu(graph_def)) == serialized(graph_def)


def test_no_pattern_no_change():
    _unchanged(lambda x: tf.nn.relu(x) + tf.nn.relu(-x))


def test_different_inputs_not_fused():
    _unchanged(lambda x: tf.nn.relu(x) + tf.constant(-ALPHA) * tf.nn.relu(-(x + 1.0)))


def test_non_const_alpha_not_fused():
    _unchanged(lambda x: tf.nn.relu(x) + tf.reduce_mean(x) * tf.nn.relu(-x))
