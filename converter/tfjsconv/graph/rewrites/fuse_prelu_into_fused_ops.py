"""Append a following ``Prelu`` to a fused conv/matmul as its activation.

tfjs's fused conv2d / depthwise / matMul kernels accept ``prelu`` as activation with
alpha as an extra argument, saving one op per layer. Applies to ``_FusedConv2D``,
``_FusedMatMul`` and ``FusedDepthwiseConv2dNative`` whose ``fused_ops`` is exactly
``[BiasAdd]`` (the reference accepts any list of at most one op, but tfjs only runs
``[BiasAdd, Prelu]``: an empty list or ``FusedBatchNorm`` would not load) and whose
only consumer is the Prelu. Result: ``fused_ops + [Prelu]``, alpha appended to the
data inputs, ``num_args + 1``, the Prelu's name and position.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    Plan,
    apply_plan,
    copy_node,
    data_inputs,
    keep_set,
    merged_control_inputs,
    set_fused_ops,
)

FUSED_OPS = ("_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative")


def fuse_prelu_into_fused_ops(graph_def: graph_pb2.GraphDef, keep: Iterable[str] = ()) -> graph_pb2.GraphDef:
    """Return a copy of ``graph_def`` with ``Prelu`` folded into the fused op before it."""
    keep_names = keep_set(keep)
    index = GraphIndex(graph_def.node)
    plan = Plan.empty()
    for prelu in index.nodes:
        inputs = data_inputs(prelu)
        if prelu.op != "Prelu" or len(inputs) != 2:
            continue
        fused = index.get(inputs[0])
        if fused is None or fused.op not in FUSED_OPS:
            continue
        if list(fused.attr["fused_ops"].list.s) != [b"BiasAdd"]:
            continue
        if not index.single_consumer(fused.name, keep_names):
            continue
        node = copy_node(fused)
        node.name = prelu.name
        node.device = prelu.device or fused.device
        del node.input[:]
        node.input.extend([*data_inputs(fused), inputs[1]])
        node.input.extend(merged_control_inputs([fused, prelu], exclude=[fused.name]))
        set_fused_ops(node, [b"BiasAdd", b"Prelu"])
        node.attr["num_args"].i = fused.attr["num_args"].i + 1
        plan.put(fused.name, [])
        plan.put(prelu.name, [node])
    return apply_plan(graph_def, plan, keep_names)
