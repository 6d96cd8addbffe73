"""Helpers for the graph-rewrite tests (no tests here).

``run_graph`` executes a GraphDef in TensorFlow. Rewritten graphs may hold tfjs-only
ops (``Prelu``, ``FusedDepthwiseConv2dNative``, ``Prelu`` inside ``_FusedConv2D`` /
``_FusedMatMul``) that TF cannot run, so ``expand_tfjs_ops`` first rewrites each of
them into plain TF ops following tfjs's documented semantics (prelu(x) = x for x >= 0,
alpha * x otherwise; fused = activation(conv(x, filter) + bias)). That expansion uses
different primitives (``Minimum``/``Maximum`` instead of the Relu/Neg pattern), so it
is an independent check of the fused form, not a replay of the rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2, node_def_pb2
from tensorflow.python.framework import tensor_util

from tfjsconv.graph.graph_utils import data_inputs


def graph_of(fn: Callable, *shapes: Sequence[int]) -> tuple:
    """(GraphDef, input tensor names, output tensor name) of ``fn`` traced on float32 inputs."""
    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    concrete = tf.function(fn).get_concrete_function(*specs)
    graph_def = concrete.graph.as_graph_def()
    return graph_def, [t.name for t in concrete.inputs], concrete.outputs[0].name


def run_graph(graph_def: graph_pb2.GraphDef, feeds: dict[str, np.ndarray], fetch: str) -> np.ndarray:
    expanded = expand_tfjs_ops(graph_def)
    with tf.Graph().as_default():
        tf.graph_util.import_graph_def(expanded, name="")
        with tf.compat.v1.Session() as session:
            return session.run(fetch, feeds)


def ops(graph_def: graph_pb2.GraphDef) -> list[str]:
    return [n.op for n in graph_def.node]


def node(graph_def: graph_pb2.GraphDef, name: str) -> node_def_pb2.NodeDef:
    matches = [n for n in graph_def.node if n.name == name]
    assert len(matches) == 1, f"{len(matches)} nodes named {name!r}"
    return matches[0]


def const_value(graph_def: graph_pb2.GraphDef, name: str) -> np.ndarray:
    n = node(graph_def, name)
    assert n.op == "Const"
    return tensor_util.MakeNdarray(n.attr["value"].tensor)


def serialized(graph_def: graph_pb2.GraphDef) -> bytes:
    return graph_def.SerializeToString(deterministic=True)


def _new(graph_def, name, op, inputs, t_type=None):
    n = graph_def.node.add(name=name, op=op)
    n.input.extend(inputs)
    if t_type is not None:
        n.attr["T"].type = t_type
    return n


def _prelu(out: graph_pb2.GraphDef, name: str, x: str, alpha: str, t_type: int) -> None:
    """name = Maximum(x, 0) + alpha * Minimum(x, 0)."""
    zero = out.node.add(name=name + "/zero", op="Const")
    zero.attr["dtype"].type = t_type
    zero.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.zeros((), np.float32)))
    _new(out, name + "/pos", "Maximum", [x, zero.name], t_type)
    _new(out, name + "/min", "Minimum", [x, zero.name], t_type)
    _new(out, name + "/neg", "Mul", [alpha, name + "/min"], t_type)
    _new(out, name, "AddV2", [name + "/pos", name + "/neg"], t_type)


def _activation(out, name, act: bytes, x: str, alpha: str, t_type: int) -> None:
    if act == b"Prelu":
        _prelu(out, name, x, alpha, t_type)
    else:
        _new(out, name, act.decode(), [x], t_type)


def expand_tfjs_ops(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    """Copy of ``graph_def`` where tfjs-only ops are spelled with TF ops."""
    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    for n in graph_def.node:
        fused_ops = list(n.attr["fused_ops"].list.s)
        t_type = n.attr["T"].type if "T" in n.attr else tf.float32.as_datatype_enum
        inputs = data_inputs(n)
        if n.op == "Prelu":
            _prelu(out, n.name, inputs[0], inputs[1], t_type)
        elif n.op == "FusedDepthwiseConv2dNative":
            dw = out.node.add()
            dw.CopyFrom(n)
            dw.name, dw.op = n.name + "/dw", "DepthwiseConv2dNative"
            del dw.input[:]
            dw.input.extend(inputs[:2])
            del dw.attr["fused_ops"]
            del dw.attr["num_args"]
            value = dw.name
            if fused_ops[0] == b"BiasAdd":
                bias = _new(
                    out,
                    n.name + "/bias" if len(fused_ops) > 1 else n.name,
                    "BiasAdd",
                    [value, inputs[2]],
                    t_type,
                )
                value = bias.name
            else:
                assert fused_ops[0] == b"NoOp"
                assert n.attr["num_args"].i == 0
            if len(fused_ops) > 1:
                alpha = inputs[3] if fused_ops[0] == b"BiasAdd" and len(inputs) > 3 else inputs[-1]
                _activation(out, n.name, fused_ops[1], value, alpha, t_type)
            elif fused_ops[0] == b"NoOp":
                _new(out, n.name, "Identity", [value], t_type)
        elif n.op in ("_FusedConv2D", "_FusedMatMul") and b"Prelu" in fused_ops:
            assert fused_ops == [b"BiasAdd", b"Prelu"] and n.attr["num_args"].i == 2
            core = out.node.add()
            core.CopyFrom(n)
            core.name = n.name + "/core"
            del core.input[:]
            core.input.extend(inputs[:3])
            del core.attr["fused_ops"].list.s[:]
            core.attr["fused_ops"].list.s.append(b"BiasAdd")
            core.attr["num_args"].i = 1
            del core.attr["TArgs"].list.type[:]
            core.attr["TArgs"].list.type.append(t_type)
            _prelu(out, n.name, core.name, inputs[3], t_type)
        else:
            out.node.add().CopyFrom(n)
    return out


def random(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_pure_and_deterministic(rewrite: Callable, graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    """Apply ``rewrite`` twice: the input must be untouched and both results byte-equal."""
    before = serialized(graph_def)
    first = rewrite(graph_def)
    assert serialized(graph_def) == before, "rewrite mutated its input"
    second = rewrite(graph_def)
    assert serialized(first) == serialized(second)
    # Returning the input itself is allowed only when nothing was rewritten.
    assert first is not graph_def or serialized(first) == before
    return first


def remap(graph_def: graph_pb2.GraphDef, fetch: str) -> graph_pb2.GraphDef:
    """Grappler's remapper on CPU: produces real ``_FusedConv2D`` / ``_FusedMatMul`` nodes."""
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(graph_def)
    for n in meta.graph_def.node:
        if n.op in ("Conv2D", "MatMul"):
            n.device = "/device:CPU:0"
    meta.collection_def["train_op"].node_list.value.append(fetch.split(":")[0])
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.optimizers.extend(["remap"])
    return tf_optimizer.OptimizeGraph(config, meta)
