"""fold_batch_norms: folded graphs compute what TF computes for the unfolded graph."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from tensorflow.python.framework import tensor_util
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

from tfjsconv.graph.rewrites import fold_batch_norms

C_IN = 3
EPS = 0.001


def _bn_params(channels: int, seed: int):
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    beta = rng.standard_normal(channels).astype(np.float32)
    mean = rng.standard_normal(channels).astype(np.float32)
    var = rng.uniform(0.1, 3.0, channels).astype(np.float32)
    return gamma, beta, mean, var


def _fused_bn(y, channels, seed, op=tf.raw_ops.FusedBatchNormV3):
    gamma, beta, mean, var = (tf.constant(v) for v in _bn_params(channels, seed))
    return op(x=y, scale=gamma, offset=beta, mean=mean, variance=var, epsilon=EPS, is_training=False)[0]


def _conv(x, filters=4):
    return tf.nn.conv2d(x, tf.constant(random([3, 3, C_IN, filters], 1)), 1, "SAME")


def _depthwise(x, mult=2):
    return tf.nn.depthwise_conv2d(x, tf.constant(random([3, 3, C_IN, mult], 2)), [1, 1, 1, 1], "SAME")


CASES = {
    "conv_bnv3": lambda x: _fused_bn(_conv(x), 4, 3),
    "conv_bn_v1": lambda x: _fused_bn(_conv(x), 4, 3, tf.raw_ops.FusedBatchNorm),
    "conv_biasadd_bn": lambda x: _fused_bn(tf.nn.bias_add(_conv(x), tf.constant(random([4], 4))), 4, 3),
    "conv_addv2_bn": lambda x: _fused_bn(_conv(x) + tf.constant(random([4], 4)), 4, 3),
    "depthwise_bn": lambda x: tf.nn.relu(_fused_bn(_depthwise(x), C_IN * 2, 5)),
    "depthwise_bias_bn": lambda x: _fused_bn(
        tf.nn.bias_add(_depthwise(x, 1), tf.constant(random([3], 6))), 3, 5
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_folded_graph_matches_tf(case):
    graph_def, (x_name,), out = graph_of(CASES[case], [2, 5, 5, C_IN])
    folded = assert_pure_and_deterministic(fold_batch_norms, graph_def)
    assert not {"FusedBatchNorm", "FusedBatchNormV3", "Add", "AddV2"} & set(ops(folded))
    conv = next(n for n in folded.node if n.op in ("Conv2D", "DepthwiseConv2dNative"))
    bn_name = next(n.name for n in graph_def.node if n.op.startswith("FusedBatchNorm"))
    bias_add = node(folded, bn_name)
    assert bias_add.op == "BiasAdd" and list(bias_add.input) == [conv.name, conv.name + "_bn_offset"]
    assert conv.input[1] == conv.name + "_weights"
    # The original weights, bias and BN parameter Consts are gone.
    bn = node(graph_def, bn_name)
    old_conv = node(graph_def, conv.name)
    replaced = [*bn.input[1:], old_conv.input[1]]
    replaced += [node(graph_def, r).input[1] for r in bn.input[:1] if node(graph_def, r).op != old_conv.op]
    assert not {r.split(":")[0] for r in replaced} & {n.name for n in folded.node}
    x = random([2, 5, 5, C_IN], 7)
    # Folding rounds each W * scale once and reorders the 27-term sums: a few float32 ulps
    # (2^-23 = 1.2e-7) of outputs of O(1-10), ~1e-6; 1e-5 leaves 10x for the sums' own
    # rounding.  A wrong fold (scale on the wrong axis, a dropped mean or bias) moves
    # outputs by O(1).  FusedBatchNorm has no float64 kernel, so no float64 twin here.
    np.testing.assert_allclose(
        run_graph(folded, {x_name: x}, out), run_graph(graph_def, {x_name: x}, out), rtol=1e-5, atol=1e-5
    )


def test_depthwise_weights_scaled_per_input_channel_and_multiplier():
    graph_def, _, _ = graph_of(CASES["depthwise_bn"], [1, 5, 5, C_IN])
    folded = fold_batch_norms(graph_def)
    conv = next(n for n in folded.node if n.op == "DepthwiseConv2dNative")
    gamma, beta, mean, var = _bn_params(C_IN * 2, 5)
    scale = gamma / np.sqrt(var + np.float32(EPS))
    expected = random([3, 3, C_IN, 2], 2) * scale.reshape(C_IN, 2)
    np.testing.assert_allclose(const_value(folded, conv.name + "_weights"), expected, rtol=1e-6)
    np.testing.assert_allclose(
        const_value(folded, conv.name + "_bn_offset"), beta - mean * scale, rtol=1e-5, atol=1e-6
    )


def test_folded_nodes_keep_topological_order():
    graph_def, _, _ = graph_of(CASES["conv_biasadd_bn"], [1, 5, 5, C_IN])
    folded = fold_batch_norms(graph_def)
    seen = set()
    for n in folded.node:
        for ref in n.input:
            assert ref.lstrip("^").split(":")[0] in seen, f"{n.name} reads {ref} before it is defined"
        seen.add(n.name)


def _hand_bnwgn_graph(scale_after_normalization: bool) -> graph_pb2.GraphDef:
    """Conv2D + BatchNormWithGlobalNormalization (deprecated since GraphDef v9, so producer 8)."""
    g = graph_pb2.GraphDef()
    g.versions.producer = 8
    x = g.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = tf.float32.as_datatype_enum

    def const(name, value):
        n = g.node.add(name=name, op="Const")
        n.attr["dtype"].type = tf.float32.as_datatype_enum
        n.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))

    const("w", random([1, 1, C_IN, 4], 11))
    gamma, beta, mean, var = _bn_params(4, 12)
    for name, value in (("m", mean), ("v", var), ("b", beta), ("g", gamma)):
        const(name, value)
    conv = g.node.add(name="conv", op="Conv2D", input=["x", "w"])
    conv.attr["T"].type = tf.float32.as_datatype_enum
    conv.attr["strides"].list.i.extend([1, 1, 1, 1])
    conv.attr["padding"].s = b"VALID"
    bn = g.node.add(name="bn", op="BatchNormWithGlobalNormalization", input=["conv", "m", "v", "b", "g"])
    bn.attr["T"].type = tf.float32.as_datatype_enum
    bn.attr["variance_epsilon"].f = EPS
    bn.attr["scale_after_normalization"].b = scale_after_normalization
    return g


@pytest.mark.parametrize("scale_after", [True, False])
def test_batch_norm_with_global_normalization(scale_after):
    graph_def = _hand_bnwgn_graph(scale_after)
    folded = assert_pure_and_deterministic(fold_batch_norms, graph_def)
    assert ops(folded) == ["Placeholder", "Const", "Conv2D", "Const", "BiasAdd"]
    x = random([1, 2, 2, C_IN], 13)
    np.testing.assert_allclose(
        run_graph(folded, {"x:0": x}, "bn:0"), run_graph(graph_def, {"x:0": x}, "bn:0"), rtol=1e-5, atol=1e-5
    )


def _unchanged(fn, shape=(1, 5, 5, C_IN)):
    graph_def, _, _ = graph_of(fn, list(shape))
    assert serialized(fold_batch_norms(graph_def)) == serialized(graph_def)


def test_no_bn_is_a_no_op():
    _unchanged(lambda x: tf.nn.relu(_conv(x)))


def test_conv_with_two_consumers_is_not_folded():
    def fn(x):
        y = _conv(x)
        return _fused_bn(y, 4, 3) + y

    _unchanged(fn)


def test_bias_with_two_consumers_is_not_folded():
    def fn(x):
        y = tf.nn.bias_add(_conv(x), tf.constant(random([4], 4)))
        return _fused_bn(y, 4, 3) * y

    _unchanged(fn)


def test_training_batch_norm_is_not_folded():
    def fn(x):
        gamma, beta, _, _ = (tf.constant(v) for v in _bn_params(4, 3))
        return tf.raw_ops.FusedBatchNormV3(
            x=_conv(x),
            scale=gamma,
            offset=beta,
            mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32),
            is_training=True,
        )[0]

    _unchanged(fn)


def test_batch_norm_after_non_conv_is_not_folded():
    _unchanged(lambda x: _fused_bn(tf.nn.relu(x), C_IN, 3))


def test_non_const_bias_is_not_folded():
    _unchanged(lambda x: _fused_bn(_conv(x) + tf.reduce_mean(x), 4, 3))


def test_protected_conv_is_not_folded():
    graph_def, _, _ = graph_of(CASES["conv_bnv3"], [1, 5, 5, C_IN])
    conv = next(n.name for n in graph_def.node if n.op == "Conv2D")
    assert serialized(fold_batch_norms(graph_def, keep=[conv + ":0"])) == serialized(graph_def)


def test_name_clash_gets_a_suffix():
    graph_def, (x_name,), out = graph_of(CASES["conv_bnv3"], [1, 5, 5, C_IN])
    conv = next(n.name for n in graph_def.node if n.op == "Conv2D")
    clash = graph_def.node.add(name=conv + "_weights", op="Placeholder")
    clash.attr["dtype"].type = tf.float32.as_datatype_enum
    folded = fold_batch_norms(graph_def)
    assert node(folded, conv).input[1] == conv + "_weights_1"
    x = random([1, 5, 5, C_IN], 8)
    np.testing.assert_allclose(
        run_graph(folded, {x_name: x}, out), run_graph(graph_def, {x_name: x}, out), rtol=1e-5, atol=1e-5
    )


def test_stripped_default_attrs_use_the_op_defaults():
    """A missing ``epsilon`` means 0.0001 and a missing ``is_training`` means True (no fold)."""
    graph_def, (x_name,), out = graph_of(CASES["conv_bnv3"], [1, 5, 5, C_IN])
    bn = next(n for n in graph_def.node if n.op == "FusedBatchNormV3")
    bn.attr["epsilon"].f = 0.0001
    x = random([1, 5, 5, C_IN], 9)
    want = run_graph(graph_def, {x_name: x}, out)
    del bn.attr["epsilon"]
    folded = fold_batch_norms(graph_def)
    assert "FusedBatchNormV3" not in ops(folded)
    np.testing.assert_allclose(run_graph(folded, {x_name: x}, out), want, rtol=1e-5, atol=1e-5)
    del bn.attr["is_training"]
    assert serialized(fold_batch_norms(graph_def)) == serialized(graph_def)


def test_folded_values_by_hand():
    from tfjsconv.graph.rewrites.fold_batch_norms import folded_values

    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    # sqrt(var + eps) = [2, 3]; scale = gamma / that = [2, 1]; offset = beta - (mean - bias) * scale.
    scaled, offset = folded_values(
        "Conv2D",
        f32(1, 2).reshape(1, 1, 1, 2),
        mean=f32(1, 2),
        var=f32(3, 8),
        beta=f32(0.5, -1),
        gamma=f32(4, 3),
        eps=np.float32(1),
        bias=f32(0.5, 1),
    )
    np.testing.assert_array_equal(scaled, f32(2, 2).reshape(1, 1, 1, 2))
    np.testing.assert_array_equal(offset, f32(-0.5, -2))
    # Depthwise [h, w, in=2, mult=2]: output channel in*2+m gets scale[in*2+m] = [1, 2, 3, 4].
    scaled, offset = folded_values(
        "DepthwiseConv2dNative",
        f32(1, 2, 3, 4).reshape(1, 1, 2, 2),
        mean=f32(0, 0, 0, 0),
        var=f32(0, 0, 0, 0),
        beta=f32(1, 1, 1, 1),
        gamma=f32(1, 2, 3, 4),
        eps=np.float32(1),
    )
    np.testing.assert_array_equal(scaled, f32(1, 4, 9, 16).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(offset, f32(1, 1, 1, 1))
    assert folded_values("Conv2D", f32(1, 2).reshape(1, 1, 1, 2), *(f32(1, 1, 1),) * 4, np.float32(1)) is None
