"""Turn ``Add``/``AddV2(conv_or_matmul, rank-1 Const)`` into ``BiasAdd``.

Grappler's remapper only fuses ``Conv2D``/``MatMul`` + ``BiasAdd`` (+ activation) into
``_FusedConv2D``/``_FusedMatMul``; Keras and hand-written graphs often add biases with
a plain ``Add``. The node keeps its name, position and ``T``; it gets
``data_format=NHWC`` (bias on the last axis, exactly what the broadcast Add did).

Beyond the reference: the bias may also be the first operand (it is swapped into
place), and the rewrite is skipped when the bias length provably differs from the
producer's channel count (a length-1 bias broadcasting over C channels is a valid
Add but an invalid BiasAdd), or when that count cannot be read from a Const filter.
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
    const_array,
    control_inputs,
    copy_node,
    data_format,
    data_inputs,
    keep_set,
)
from tfjsconv.graph.lazy_weights import STAND_IN_CONTAINER, STAND_IN_OP

PRODUCER_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")


def _weights_shape(node: node_def_pb2.NodeDef | None) -> tuple[int, ...] | None:
    """Shape of a Const, or of a streamed weight's stand-in (``graph.streaming``), read
    from the node without decoding its value."""
    if node is None:
        return None
    if node.op == "Const" and "value" in node.attr:
        return tuple(int(d.size) for d in node.attr["value"].tensor.tensor_shape.dim)
    if node.op == STAND_IN_OP and "container" in node.attr and node.attr["container"].s == STAND_IN_CONTAINER:
        return tuple(int(d.size) for d in node.attr["shape"].shape.dim)
    return None


def _channels(producer: node_def_pb2.NodeDef, index: GraphIndex) -> int | None:
    """Size of the producer output's last axis, from its Const filter/weights' shape."""
    inputs = data_inputs(producer)
    shape = _weights_shape(index.get(inputs[1])) if len(inputs) == 2 else None
    if shape is None:
        return None
    if producer.op == "MatMul":
        if len(shape) != 2:
            return None
        return int(shape[0] if producer.attr["transpose_b"].b else shape[1])
    if len(shape) != 4 or data_format(producer) != b"NHWC":
        return None
    if producer.op == "Conv2D":
        return int(shape[3])
    return int(shape[2] * shape[3])


def normalize_bias_add(graph_def: graph_pb2.GraphDef, keep: Iterable[str] = ()) -> graph_pb2.GraphDef:
    """Return a copy of ``graph_def`` where bias-like Adds after conv/matmul are BiasAdds."""
    keep_names = keep_set(keep)
    index = GraphIndex(graph_def.node)
    plan = Plan.empty()
    for node in index.nodes:
        inputs = data_inputs(node)
        if node.op not in ("Add", "AddV2") or len(inputs) != 2:
            continue
        for value_pos in (0, 1):
            producer = index.get(inputs[value_pos])
            bias = const_array(index.get(inputs[1 - value_pos]))
            if producer is None or producer.op not in PRODUCER_OPS or bias is None:
                continue
            if bias.ndim != 1 or not index.single_consumer(producer.name, keep_names):
                continue
            if _channels(producer, index) != bias.shape[0]:
                continue
            new = copy_node(node)
            new.op = "BiasAdd"
            del new.input[:]
            new.input.extend([inputs[value_pos], inputs[1 - value_pos], *control_inputs(node)])
            new.attr["data_format"].s = b"NHWC"
            plan.put(node.name, [new])
            break
    return apply_plan(graph_def, plan, keep_names)
