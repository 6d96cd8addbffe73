"""Fuse ``DepthwiseConv2dNative`` with a following BiasAdd and/or activation.

Grappler's remapper fuses Conv2D and MatMul but not depthwise convolutions; tfjs has a
fused depthwise kernel, reached through its own op name ``FusedDepthwiseConv2dNative``
(not a TensorFlow op). Three passes, each over the result of the previous one, in
graph order: DW+BiasAdd+act, then DW+BiasAdd, then DW+act, act in {Relu, Relu6, Elu}.

The fused node copies the depthwise node's attrs (strides, padding, dilations,
data_format, T, ...), adds ``fused_ops`` (``BiasAdd`` or ``NoOp``, then the activation)
and ``num_args`` (the number of extra inputs: 1 with a bias, else 0), takes the
**last** node's name and position (so consumers and fetches stay wired), and reads
``[input, filter, bias?]`` plus the control inputs of every node it replaces.
Only NHWC is fused (tfjs's fused depthwise kernel is NHWC), and only when each
intermediate result has that single consumer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    Plan,
    apply_plan,
    copy_node,
    data_format,
    data_inputs,
    keep_set,
    merged_control_inputs,
    set_fused_ops,
)

FUSED_OP = "FusedDepthwiseConv2dNative"
ACTIVATIONS = ("Relu", "Relu6", "Elu")


def _fused(
    dw: node_def_pb2.NodeDef, bias_add: node_def_pb2.NodeDef | None, act: node_def_pb2.NodeDef | None
) -> node_def_pb2.NodeDef:
    last = act if act is not None else bias_add
    assert last is not None, "a fusion has a BiasAdd or an activation"
    chain = [n for n in (dw, bias_add, act) if n is not None]
    node = copy_node(dw)
    node.name = last.name
    node.op = FUSED_OP
    node.device = last.device or dw.device
    del node.input[:]
    node.input.extend(data_inputs(dw))
    if bias_add is not None:
        node.input.append(data_inputs(bias_add)[1])
    node.input.extend(merged_control_inputs(chain, exclude=[n.name for n in chain]))
    ops = [b"BiasAdd" if bias_add is not None else b"NoOp"]
    if act is not None:
        ops.append(act.op.encode())
    set_fused_ops(node, ops)
    node.attr["num_args"].i = 1 if bias_add is not None else 0
    return node


def _depthwise(ref: str, index: GraphIndex, keep: set[str]) -> node_def_pb2.NodeDef | None:
    node = index.get(ref)
    if node is None or node.op != "DepthwiseConv2dNative" or data_format(node) != b"NHWC":
        return None
    if len(data_inputs(node)) != 2 or not index.single_consumer(node.name, keep):
        return None
    return node


def _bias_add(node: node_def_pb2.NodeDef | None, index: GraphIndex, keep: set[str]):
    """(BiasAdd, depthwise) when ``node`` is an NHWC BiasAdd on a fusable depthwise conv."""
    if node is None or node.op != "BiasAdd" or data_format(node) != b"NHWC":
        return None
    inputs = data_inputs(node)
    dw = _depthwise(inputs[0], index, keep) if len(inputs) == 2 else None
    return (node, dw) if dw is not None else None


def _act_input(node: node_def_pb2.NodeDef) -> str | None:
    inputs = data_inputs(node)
    return inputs[0] if node.op in ACTIVATIONS and len(inputs) == 1 else None


def _pass(graph_def: graph_pb2.GraphDef, kind: str, keep: set[str]) -> graph_pb2.GraphDef:
    index = GraphIndex(graph_def.node)
    plan = Plan.empty()
    for node in index.nodes:
        dw = bias_add = act = None
        act_input = _act_input(node)
        if kind == "bias_act" and act_input is not None:
            producer = index.get(act_input)
            if producer is not None and index.single_consumer(producer.name, keep):
                found = _bias_add(producer, index, keep)
                if found is not None:
                    (bias_add, dw), act = found, node
        elif kind == "bias":
            found = _bias_add(node, index, keep)
            if found is not None:
                bias_add, dw = found
        elif kind == "act" and act_input is not None:
            dw, act = _depthwise(act_input, index, keep), node
        if dw is None:
            continue
        last = act if act is not None else bias_add
        assert last is not None
        plan.put(dw.name, [])
        if bias_add is not None and bias_add is not last:
            plan.put(bias_add.name, [])
        plan.put(last.name, [_fused(dw, bias_add, act)])
    return apply_plan(graph_def, plan, keep)


def fuse_depthwise_conv2d(graph_def: graph_pb2.GraphDef, keep: Iterable[str] = ()) -> graph_pb2.GraphDef:
    """Return a copy of ``graph_def`` with depthwise conv + bias/activation fused for tfjs."""
    keep_names = keep_set(keep)
    for kind in ("bias_act", "bias", "act"):
        graph_def = _pass(graph_def, kind, keep_names)
    return graph_def
