"""Rewrite grouped convolutions, which tfjs 4.22 has no kernel for, exactly.

A ``Conv2D`` (or ``Conv3D``) whose filter's in-depth ``k`` is smaller than the
input's depth ``C`` is a grouped convolution with ``G = C / k`` groups: output
channels ``[g * n, (g + 1) * n)`` (``n = out / G``) read only input channels
``[g * k, (g + 1) * k)``.  Keras 3 and tf_keras emit one for ``Conv*D(groups=G)``
(ConvNeXt, RegNet); tfjs refuses it at run time (``depth of input ... must match
input depth for filter``).  Two exact forms, each output value computed from the
same products summed in the same per-group way:

* ``k == 1`` (one input channel per group, ``Conv2D`` channels-last): a depthwise
  convolution.  Output channel ``c * m + j`` of ``DepthwiseConv2dNative`` with
  filter ``[h, w, C, m]`` reads input channel ``c`` with filter ``[..., c, j]``,
  the grouped conv's output ``c * m + j`` with filter ``[..., 0, c * m + j]``:
  the same numbers, so the filter is only ``Reshape``d to ``[h, w, C, m]``.
* otherwise ``Split`` the input (channel axis) and the filter (last axis) into
  ``G`` pieces, one ordinary convolution per group with the node's own attrs, and
  ``ConcatV2`` the results on the channel axis.

The rewritten node keeps its name (the ``DepthwiseConv2dNative`` or the
``ConcatV2``), so consumers and fetches are untouched; helpers are named after it and
appended.  The input depth needs shape inference: TensorFlow infers the shapes of a
weight-less copy of the graph (large constants replaced by placeholders of their
shape), which builds no session and reads no weight; it runs after the op check, on
a graph of ops tfjs runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tfjsconv.graph.graph_utils import (
    control_inputs,
    copy_node,
    data_format,
    data_inputs,
    new_node,
    node_name,
    unique_name,
)
from tfjsconv.graph.lazy_weights import STAND_IN_CONTAINER, STAND_IN_OP

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

log = logging.getLogger(__name__)

CONV_OPS = frozenset({"Conv2D", "Conv3D"})
_SMALL_CONST_ELEMENTS = 64  # constants up to this size may be shapes: kept for inference


def _is_large_value(node: node_def_pb2.NodeDef) -> bool:
    if node.op == STAND_IN_OP and node.attr["container"].s == STAND_IN_CONTAINER:
        return True
    if node.op != "Const":
        return False
    dims = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
    return int(np.prod(dims)) > _SMALL_CONST_ELEMENTS


def _skeleton(graph_def: graph_pb2.GraphDef, convs: Sequence[node_def_pb2.NodeDef]) -> graph_pb2.GraphDef:
    """The convolutions' ancestors, large constants replaced by placeholders of their
    dtype and shape (shape inference never reads their values)."""
    from tensorflow.core.framework import graph_pb2

    by_name = {node.name: node for node in graph_def.node}
    needed: set[str] = set()
    pending = [node_name(ref) for conv in convs for ref in conv.input]
    while pending:
        name = pending.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        if not _is_large_value(by_name[name]):
            pending.extend(node_name(ref) for ref in by_name[name].input)
    skeleton = graph_pb2.GraphDef()
    skeleton.versions.CopyFrom(graph_def.versions)
    for node in graph_def.node:
        if node.name not in needed:
            continue
        if _is_large_value(node):
            placeholder = new_node(node.name, "Placeholder")
            dtype = node.attr["dtype"].type
            placeholder.attr["dtype"].type = dtype
            if node.op == "Const":
                placeholder.attr["shape"].shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
            else:
                placeholder.attr["shape"].CopyFrom(node.attr["shape"])
            skeleton.node.append(placeholder)
        else:
            skeleton.node.append(node)
    return skeleton


def _input_shapes(
    graph_def: graph_pb2.GraphDef, convs: Sequence[node_def_pb2.NodeDef]
) -> dict[str, tuple[list[int | None] | None, list[int | None] | None]]:
    """Conv node name -> (input shape, filter shape) as TensorFlow infers them."""
    import tensorflow as tf

    skeleton = _skeleton(graph_def, convs)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(skeleton, name="")

    def shape(ref: str) -> list[int | None] | None:
        tensor = graph.get_tensor_by_name(ref if ":" in ref else ref + ":0")
        return tensor.shape.as_list() if tensor.shape.rank is not None else None

    return {conv.name: (shape(data_inputs(conv)[0]), shape(data_inputs(conv)[1])) for conv in convs}


def _channel_axis(node: node_def_pb2.NodeDef) -> int:
    return 1 if data_format(node).startswith(b"NC") else (4 if node.op == "Conv3D" else 3)


def _int32_const(name: str, values: int | Sequence[int], device: str, after: str) -> node_def_pb2.NodeDef:
    """An int32 ``Const`` (a scalar for an int: ``const_node`` would make it rank 1)."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import tensor_util

    node = new_node(name, "Const", device)
    node.attr["dtype"].type = types_pb2.DT_INT32
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.array(values, dtype=np.int32)))
    node.input.append("^" + node_name(after))  # in the input's frame (lowered control flow)
    return node


def _depthwise(
    node: node_def_pb2.NodeDef, kernel_shape: Sequence[int], channels: int, taken: set[str]
) -> list[node_def_pb2.NodeDef]:
    from tensorflow.core.framework import types_pb2

    x, kernel = data_inputs(node)
    height, width = kernel_shape[:2]
    shape = _int32_const(
        unique_name(f"{node.name}/depthwise_shape", taken), [height, width, channels, -1], node.device, x
    )
    filter_reshape = new_node(unique_name(f"{node.name}/depthwise_filter", taken), "Reshape", node.device)
    filter_reshape.input.extend([kernel, shape.name])
    filter_reshape.attr["T"].CopyFrom(node.attr["T"])
    filter_reshape.attr["Tshape"].type = types_pb2.DT_INT32
    out = new_node(node.name, "DepthwiseConv2dNative", node.device)
    out.input.extend([x, filter_reshape.name, *control_inputs(node)])
    for attr in ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations"):
        if attr in node.attr:
            out.attr[attr].CopyFrom(node.attr[attr])
    return [shape, filter_reshape, out]


def _split(name: str, value: str, axis: str, groups: int, like: node_def_pb2.NodeDef) -> node_def_pb2.NodeDef:
    node = new_node(name, "Split", like.device)
    node.input.extend([axis, value])
    node.attr["num_split"].i = groups
    node.attr["T"].CopyFrom(like.attr["T"])
    return node


def _split_groups(node: node_def_pb2.NodeDef, groups: int, taken: set[str]) -> list[node_def_pb2.NodeDef]:
    from tensorflow.core.framework import types_pb2

    x, kernel = data_inputs(node)
    axis = _channel_axis(node)
    filter_axis = 4 if node.op == "Conv3D" else 3

    def name(suffix: str) -> str:
        return unique_name(f"{node.name}/{suffix}", taken)

    input_axis = _int32_const(name("group_axis"), axis, node.device, x)
    kernel_axis = _int32_const(name("group_filter_axis"), filter_axis, node.device, x)
    inputs = _split(name("group_inputs"), x, input_axis.name, groups, node)
    inputs.input.extend(control_inputs(node))
    kernels = _split(name("group_filters"), kernel, kernel_axis.name, groups, node)
    out: list[node_def_pb2.NodeDef] = [input_axis, kernel_axis, inputs, kernels]
    convs = []
    for g in range(groups):
        conv = copy_node(node)
        conv.name = name(f"group_{g}")
        del conv.input[:]
        port = f":{g}" if g else ""
        conv.input.extend([inputs.name + port, kernels.name + port])
        convs.append(conv.name)
        out.append(conv)
    concat = new_node(node.name, "ConcatV2", node.device)
    concat.input.extend([*convs, input_axis.name])
    concat.attr["N"].i = groups
    concat.attr["T"].CopyFrom(node.attr["T"])
    concat.attr["Tidx"].type = types_pb2.DT_INT32
    out.append(concat)
    return out


def _groups(
    node: node_def_pb2.NodeDef, shapes: tuple[list[int | None] | None, list[int | None] | None]
) -> int:
    """The node's group count (1: an ordinary convolution, or shapes unknown)."""
    x_shape, kernel_shape = shapes
    if x_shape is None or kernel_shape is None:
        return 1
    channels, in_depth = x_shape[_channel_axis(node)], kernel_shape[-2]
    if channels is None or in_depth is None or in_depth == 0 or channels == in_depth:
        return 1
    out_depth = kernel_shape[-1]
    if channels % in_depth or out_depth is None or out_depth % (channels // in_depth):
        return 1  # not a valid grouped convolution: TensorFlow refuses it too
    return channels // in_depth


def grouped_convolutions(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Replace, in place, every grouped convolution of the top-level graph (see the
    module docstring); returns the names of the rewritten nodes (in graph order)."""
    convs = [node for node in graph_def.node if node.op in CONV_OPS and len(data_inputs(node)) == 2]
    if not convs:
        return []
    try:
        shapes = _input_shapes(graph_def, convs)
    except Exception as e:  # noqa: BLE001 - a graph TF cannot import: tfjs reports the conv
        log.info("no shape inference for grouped convolutions (%s: %s)", type(e).__name__, e)
        return []
    taken = {node.name for node in graph_def.node}
    helpers: list[node_def_pb2.NodeDef] = []
    rewritten = []
    for node in convs:
        groups = _groups(node, shapes[node.name])
        if groups == 1:
            continue
        kernel_shape = shapes[node.name][1] or []
        depthwise = node.op == "Conv2D" and kernel_shape[2] == 1 and None not in kernel_shape[:2]
        if depthwise and data_format(node) == b"NHWC":
            *extra, out = _depthwise(node, kernel_shape, groups, taken)  # type: ignore[arg-type]
        else:
            *extra, out = _split_groups(node, groups, taken)
        node.CopyFrom(out)
        helpers.extend(extra)
        rewritten.append(node.name)
    graph_def.node.extend(helpers)
    return rewritten
