"""Weights kept out of grappler (``tfjsconv.graph.weight_stash``) change nothing.

The oracle is grappler itself: every graph is optimized twice, once with all weights
inside grappler (``stash_min_bytes=None``, what the reference converter does) and once
with the stash, and the two results must hold the same nodes (node order is grappler's
topological order and may differ; GraphDef semantics do not depend on it).  Each
positive case also checks that something was stashed, so the comparison is not
vacuous, and each exclusion rule has a graph where grappler *would* use the weight's
value.
"""

from __future__ import annotations

from collections.abc import Sequence

import graph_models as gm
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2
from test_rewrites_support import graph_of, random, run_graph

from tfjsconv.graph import optimize, weight_stash
from tfjsconv.graph.freeze import freeze_concrete_function


def _copy(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    return out


def _canonical(graph_def: graph_pb2.GraphDef) -> tuple[list[bytes], bytes]:
    return (
        sorted(n.SerializeToString(deterministic=True) for n in graph_def.node),
        graph_def.library.SerializeToString(deterministic=True),
    )


def _optimized_both_ways(graph_def, outputs: Sequence[str], min_bytes: int = 1):
    plain = optimize.optimize_graph(_copy(graph_def), outputs, stash_min_bytes=None)
    stashed = optimize.optimize_graph(_copy(graph_def), outputs, stash_min_bytes=min_bytes)
    return plain, stashed


def _stashed_names(graph_def, outputs: Sequence[str], min_bytes: int = 1) -> list[str]:
    """What the first grappler run would see as value-less stand-ins."""
    g = _copy(graph_def)
    weight_stash.fold_const_identities(g, outputs)
    return weight_stash.stash(g, outputs, min_bytes).names


# ------------------------------------------------------------- real models


def _frozen_saved_model(path: str):
    loaded = tf.saved_model.load(path)
    frozen = freeze_concrete_function(
        loaded.signatures["serving_default"], root=loaded, control_flow_v2=False, generated_by="test"
    )
    return frozen.graph_def, frozen.output_nodes


@pytest.mark.parametrize(
    "name", ["mlp", "cnn_bn", "depthwise", "lstm", "prelu", "two_outputs", "mobilenet_v2"]
)
def test_same_graph_with_and_without_stash(tmp_path, name):
    path, _ = getattr(gm, name)(str(tmp_path))
    graph_def, outputs = _frozen_saved_model(path)
    assert _stashed_names(graph_def, outputs), "nothing stashed: the comparison would prove nothing"
    plain, stashed = _optimized_both_ways(graph_def, outputs)
    assert _canonical(plain) == _canonical(stashed)
    # And at the default threshold on the one model with large weights.
    if name == "mobilenet_v2":
        assert _stashed_names(graph_def, outputs, weight_stash.DEFAULT_MIN_BYTES)
        plain, stashed = _optimized_both_ways(graph_def, outputs, weight_stash.DEFAULT_MIN_BYTES)
        assert _canonical(plain) == _canonical(stashed)


def _static_shapes(graph_def, outputs: Sequence[str]):
    """Grappler's own static shape inference: node -> output shapes."""
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.python.grappler import item as grappler_item

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(graph_def)
    meta.collection_def["train_op"].node_list.value.extend(outputs)
    properties = grappler_item.Item(meta).GetOpProperties()
    return {
        name: [p.shape.SerializeToString(deterministic=True) for p in props]
        for name, props in properties.items()
    }


@pytest.mark.parametrize("name", ["mlp", "cnn_bn"])
def test_stand_ins_keep_grappler_static_shapes(tmp_path, name):
    """Shape-dependent rewrites see the same shapes: a Placeholder stand-in would fail
    this (grappler treats placeholders as feeds and forgets their static shape)."""
    path, _ = getattr(gm, name)(str(tmp_path))
    graph_def, outputs = _frozen_saved_model(path)
    weight_stash.fold_const_identities(graph_def, outputs)
    stashed_graph = _copy(graph_def)
    assert weight_stash.stash(stashed_graph, outputs, 1).names
    assert _static_shapes(stashed_graph, outputs) == _static_shapes(graph_def, outputs)


def _embedding_model(root: str) -> str:
    """Token ids -> Embedding -> mean -> Dense: the table is read by GatherV2."""
    import tf_keras

    gm._seed()
    ids = tf_keras.Input((6,), dtype="int32", name="ids")
    h = tf_keras.layers.Embedding(300, 16, name="emb")(ids)
    out = tf_keras.layers.Dense(3, name="head")(tf_keras.layers.GlobalAveragePooling1D()(h))
    path = f"{root}/emb_sm"
    gm._save_keras2_savedmodel(tf_keras.Model(ids, out), path)
    return path


def test_embedding_table_is_stashed_and_the_graph_unchanged(tmp_path):
    graph_def, outputs = _frozen_saved_model(_embedding_model(str(tmp_path)))
    g = _copy(graph_def)
    weight_stash.fold_const_identities(g, outputs)
    stashed = weight_stash.stash(g, outputs, weight_stash.DEFAULT_MIN_BYTES)
    assert stashed.nbytes == 300 * 16 * 4  # the table, and only the table (the head is too small)
    (name,) = stashed.names
    assert [n.op for n in g.node if name in n.input] == ["GatherV2"]
    plain, stashed = _optimized_both_ways(graph_def, outputs, weight_stash.DEFAULT_MIN_BYTES)
    assert _canonical(plain) == _canonical(stashed)
    ids = np.array([[1, 5, 299, 0, 7, 7]], np.int32)
    input_name = next(n.name for n in graph_def.node if n.op == "Placeholder")
    np.testing.assert_allclose(
        run_graph(stashed, {input_name + ":0": ids}, outputs[0] + ":0"),
        run_graph(graph_def, {input_name + ":0": ids}, outputs[0] + ":0"),
        rtol=1e-6,
    )


# ------------------------------------------------------ hand-built graphs


def _conv_graph(body):
    """Trace ``body(x)`` for a [1, 6, 6, 3] float input; returns (graph_def, outputs)."""
    graph_def, _, output = graph_of(body, [1, 6, 6, 3])
    return graph_def, [output.split(":")[0]]


W = random([3, 3, 3, 4], 11)
K = random([4, 5], 12)


def _dense_head(y):
    return tf.matmul(tf.reshape(y, [-1, 4]), tf.constant(K))


def test_plain_conv_and_matmul_weights_are_stashed_and_restored():
    graph_def, outputs = _conv_graph(
        lambda x: _dense_head(tf.nn.relu(tf.nn.conv2d(x, tf.constant(W), 1, "SAME")))
    )
    names = _stashed_names(graph_def, outputs)
    assert len(names) == 2
    plain, stashed = _optimized_both_ways(graph_def, outputs)
    assert _canonical(plain) == _canonical(stashed)
    x = random([1, 6, 6, 3], 13)
    want = run_graph(graph_def, {"x:0": x}, outputs[0] + ":0")
    np.testing.assert_allclose(run_graph(stashed, {"x:0": x}, outputs[0] + ":0"), want, rtol=1e-6, atol=1e-6)


# Grappler folds a constant multiply into conv filters only: a MatMul's weights next to
# a Mul stay opaque (stashed), and the optimized graph is the same.
_SCALED_MATMULS = {
    "scaled after matmul": lambda x: (
        tf.matmul(tf.reshape(x, [-1, 3]), tf.constant(random([3, 5], 17))) * tf.constant(2.0)
    ),
    "scaled before matmul": lambda x: tf.matmul(
        tf.reshape(x, [-1, 3]) * tf.constant(3.0), tf.constant(random([3, 5], 18))
    ),
    "vector scale after matmul": lambda x: (
        tf.matmul(tf.reshape(x, [-1, 3]), tf.constant(random([3, 5], 19))) * tf.constant(random([5], 20))
    ),
}


@pytest.mark.parametrize("case", sorted(_SCALED_MATMULS))
def test_scaled_matmul_weights_are_stashed(case):
    graph_def, outputs = _conv_graph(_SCALED_MATMULS[case])
    kernels = [
        n.name for n in graph_def.node if n.op == "Const" and len(n.attr["value"].tensor.tensor_content) == 60
    ]
    assert len(kernels) == 1
    assert kernels[0] in _stashed_names(graph_def, outputs)
    plain, stashed = _optimized_both_ways(graph_def, outputs)
    assert _canonical(plain) == _canonical(stashed)


def test_stash_then_restore_is_the_identity():
    graph_def, outputs = _conv_graph(lambda x: tf.nn.conv2d(x, tf.constant(W), 1, "SAME"))
    original = graph_def.SerializeToString(deterministic=True)
    g = _copy(graph_def)
    stashed = weight_stash.stash(g, outputs, 1)
    assert stashed.names and all(n.op == "VariableV2" for n in g.node if n.name in stashed.entries)
    assert stashed.nbytes == W.nbytes
    weight_stash.restore(g, stashed)
    assert g.SerializeToString(deterministic=True) == original


# Each case: a graph where grappler reads the weight's value, so the weight must stay.
_EXCLUDED = {
    # MulConvPushDown: Mul(Conv(x, W), c) -> Conv(x, W * c).
    "scaled after conv": lambda x: tf.nn.conv2d(x, tf.constant(W), 1, "SAME") * tf.constant(2.0),
    # FoldMultiplyIntoConv: Conv(Mul(x, c), W) -> Conv(x, W * c).
    "scaled before conv": lambda x: tf.nn.conv2d(x * tf.constant(3.0), tf.constant(W), 1, "SAME"),
    # x @ 0 -> zeros, and uniform tensors are re-encoded by constant compression.
    "zeros kernel": lambda x: tf.matmul(tf.reshape(x, [-1, 3]), tf.constant(np.zeros([3, 5], np.float32))),
    "uniform kernel": lambda x: tf.matmul(
        tf.reshape(x, [-1, 3]), tf.constant(np.full([3, 5], 0.5, np.float32))
    ),
    # Equal constants are de-duplicated.
    "duplicate kernels": lambda x: (
        tf.nn.conv2d(x, tf.constant(W), 1, "SAME") + tf.nn.conv2d(tf.nn.relu(x), tf.constant(W), 1, "SAME")
    ),
    # A conv of constants folds away entirely.
    "constant data input": lambda x: (
        tf.nn.conv2d(tf.constant(random([1, 6, 6, 3], 14)), tf.constant(W), 1, "SAME") + x[..., :1]
    ),
    # The weight is transformed (Transpose of a constant folds).
    "transposed kernel": lambda x: tf.matmul(
        tf.reshape(x, [-1, 3]), tf.transpose(tf.constant(random([5, 3], 15)))
    ),
    "nan in kernel": lambda x: tf.matmul(
        tf.reshape(x, [-1, 3]), tf.constant(np.where(np.eye(3, 5) > 0, np.nan, 1.5).astype(np.float32))
    ),
}


@pytest.mark.parametrize("case", sorted(_EXCLUDED))
def test_weights_grappler_reads_are_not_stashed(case):
    graph_def, outputs = _conv_graph(_EXCLUDED[case])
    kernels = [
        n.name for n in graph_def.node if n.op == "Const" and len(n.attr["value"].tensor.tensor_content) >= 60
    ]
    assert kernels
    assert not set(kernels) & set(_stashed_names(graph_def, outputs))
    plain, stashed = _optimized_both_ways(graph_def, outputs)
    assert _canonical(plain) == _canonical(stashed)


def test_fetched_weight_is_not_stashed():
    graph_def, _, _ = graph_of(lambda x: tf.nn.conv2d(x, tf.constant(W), 1, "SAME"), [1, 6, 6, 3])
    weight = next(n.name for n in graph_def.node if n.op == "Const" and n.attr["value"].tensor.tensor_content)
    assert weight in _stashed_names(graph_def, ["Conv2D"])
    assert weight not in _stashed_names(graph_def, ["Conv2D", weight])


def test_fold_const_identities_renames_the_const_like_grappler():
    graph_def, outputs = _conv_graph(
        lambda x: tf.nn.conv2d(x, tf.identity(tf.identity(tf.constant(W))), 1, "SAME")
    )
    before = {n.op for n in graph_def.node}
    assert "Identity" in before
    g = _copy(graph_def)
    assert weight_stash.fold_const_identities(g, outputs) == 2
    conv = next(n for n in g.node if n.op == "Conv2D")
    source = next(n for n in g.node if n.name == conv.input[1])
    assert source.op == "Const"
    x = random([1, 6, 6, 3], 16)
    np.testing.assert_array_equal(
        run_graph(g, {"x:0": x}, outputs[0] + ":0"), run_graph(graph_def, {"x:0": x}, outputs[0] + ":0")
    )
