"""Fold inference batch norms into the convolution before them.

``conv -> [bias add] -> BatchNorm`` becomes ``conv(scaled weights) -> BiasAdd(offset)``:
tfjs then sees a plain conv + bias, which grappler's remapper fuses into
``_FusedConv2D`` and which tfjs runs as one fused kernel instead of five ops.

Math (per output channel c): ``scale = gamma / sqrt(var + eps)``,
``offset = beta - (mean - bias) * scale``; the conv weights are multiplied by ``scale``
on their output-channel axis (last axis of Conv2D's HWIO filter; for depthwise
``[h, w, in, mult]`` the channel is ``in * mult + m``, i.e. the flattened last two axes).

Placement (stable, topological): ``<conv>_weights`` goes right before the conv;
``<conv>_bn_offset`` and the ``BiasAdd`` (which takes the BN node's name so its
consumers stay wired) go where the BN node was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

    from tfjsconv.graph.lazy_weights import LazyWeights

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    Plan,
    apply_plan,
    const_array,
    const_node,
    copy_node,
    data_format,
    data_inputs,
    keep_set,
    merged_control_inputs,
    new_node,
    node_name,
    unique_name,
)

CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
BIAS_OPS = ("BiasAdd", "Add", "AddV2")

_DEFAULT_EPSILON = 0.0001  # FusedBatchNorm*'s op default

# Input positions of (mean, variance, beta, gamma) and the epsilon attr per BN op.
_BN_LAYOUT = {
    "BatchNormWithGlobalNormalization": ((1, 2, 3, 4), "variance_epsilon"),
    "FusedBatchNorm": ((3, 4, 2, 1), "epsilon"),
    "FusedBatchNormV3": ((3, 4, 2, 1), "epsilon"),
}


_BnParams = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.float32]


def _bn_params(bn: node_def_pb2.NodeDef, index: GraphIndex) -> _BnParams | None:
    """(mean, var, beta, gamma, eps) as float32 when ``bn`` is an NHWC inference BN on Consts."""
    layout = _BN_LAYOUT.get(bn.op)
    inputs = data_inputs(bn)
    if layout is None or len(inputs) != 5:
        return None
    positions, eps_attr = layout
    if bn.op.startswith("FusedBatchNorm"):
        # Absent attrs mean the op defaults (GraphDefs may be saved with defaults
        # stripped): is_training=True, epsilon=0.0001.
        is_training = bn.attr["is_training"].b if "is_training" in bn.attr else True
        if is_training or data_format(bn) != b"NHWC":
            return None
    values: list[np.ndarray] = []
    for p in positions:
        v = const_array(index.get(inputs[p]))
        if v is None or v.ndim != 1 or (values and v.shape != values[0].shape):
            return None
        values.append(v)
    mean, var, beta, gamma = (v.astype(np.float32) for v in values)
    if bn.op == "BatchNormWithGlobalNormalization" and not bn.attr["scale_after_normalization"].b:
        gamma = np.ones_like(gamma)
    eps = np.float32(bn.attr[eps_attr].f if eps_attr in bn.attr else _DEFAULT_EPSILON)
    return mean, var, beta, gamma, eps


def _channels(bn: node_def_pb2.NodeDef, index: GraphIndex) -> int:
    mean = const_array(index.get(data_inputs(bn)[_BN_LAYOUT[bn.op][0][0]]))
    assert mean is not None, "only called after _bn_params accepted bn"
    return int(mean.shape[0])


def _match(bn: node_def_pb2.NodeDef, index: GraphIndex, keep):
    """(conv, bias_node or None, bias value or None) feeding ``bn``, or None."""
    if not index.only_output0_read(bn.name):
        return None  # batch statistics outputs are read: the BN must stay
    producer = index.get(data_inputs(bn)[0]) if data_inputs(bn) else None
    bias_node, bias = None, None
    if producer is not None and producer.op in BIAS_OPS:
        if not index.single_consumer(producer.name, keep) or len(data_inputs(producer)) != 2:
            return None
        if producer.op == "BiasAdd" and data_format(producer) != b"NHWC":
            return None
        bias = const_array(index.get(data_inputs(producer)[1]))
        if bias is None or bias.ndim > 1 or bias.size not in (1, _channels(bn, index)):
            return None
        bias_node, producer = producer, index.get(data_inputs(producer)[0])
    if producer is None or producer.op not in CONV_OPS or data_format(producer) != b"NHWC":
        return None
    if not index.single_consumer(producer.name, keep):
        return None
    return producer, bias_node, bias


def fold_factors(
    conv_op: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    mean: np.ndarray,
    var: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    eps: np.float32,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(factor for ``scaled_weights``, offset) for weights of ``shape``/``dtype``; None
    if shapes disagree.  Needs no weight values, so streamed weights fold too."""
    if len(shape) != 4:
        return None
    channels = shape[3] if conv_op == "Conv2D" else shape[2] * shape[3]
    if mean.shape != (channels,):
        return None
    scale = gamma / np.sqrt(var + eps)
    if bias is not None:
        mean = mean - bias.astype(np.float32)
    offset = beta - mean * scale
    factor = scale.reshape(shape[2:]) if conv_op == "DepthwiseConv2dNative" else scale
    return factor, offset.astype(dtype)


def scaled_weights(weights: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """The folded weights: float32 multiply broadcast on the channel axes."""
    return (weights.astype(np.float32) * factor).astype(weights.dtype)


def folded_values(
    conv_op: str,
    weights: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    eps: np.float32,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(scaled weights, offset) replacing ``conv -> [+bias] -> BN``; None if shapes disagree.

    Pure numpy in float32 (IEEE-exact elementwise ops, so equal on every machine).
    """
    factors = fold_factors(conv_op, weights.shape, weights.dtype, mean, var, beta, gamma, eps, bias)
    if factors is None:
        return None
    factor, offset = factors
    return scaled_weights(weights, factor), offset


@dataclasses.dataclass(frozen=True, eq=False)
class ScaleFold:
    """``scaled_weights`` by a batch norm's per-channel factor, replayed on a streamed weight."""

    factor: np.ndarray

    def apply(self, value: np.ndarray) -> np.ndarray:
        return scaled_weights(value, self.factor)


def fold_batch_norms(
    graph_def: graph_pb2.GraphDef, keep: Iterable[str] = (), lazy: LazyWeights | None = None
) -> graph_pb2.GraphDef:
    """Return a copy of ``graph_def`` with foldable batch norms folded into their convs.

    ``keep``: fetch node names that must survive (a protected conv is not rewired).
    ``lazy``: streamed weights (``graph.streaming``); a stand-in filter is folded
    lazily, its new stand-in scales the streamed tensor when it is written.
    """
    keep_names = keep_set(keep)
    index = GraphIndex(graph_def.node)
    taken = set(index.by_name)
    plan = Plan.empty()
    for bn in index.nodes:
        if bn.op not in _BN_LAYOUT:
            continue
        params = _bn_params(bn, index)
        if params is None:
            continue
        matched = _match(bn, index, keep_names)
        if matched is None:
            continue
        conv, bias_node, bias = matched
        conv_inputs = data_inputs(conv)
        weights_node = index.get(conv_inputs[1]) if len(conv_inputs) == 2 else None
        if weights_node is not None and lazy is not None and lazy.is_stand_in(weights_node):
            source = lazy.tensors[weights_node.name]
            factors = fold_factors(conv.op, source.shape, source.dtype, *params, bias=bias)
            if factors is None:
                continue
            factor, offset = factors
            dtype = weights_node.attr["dtype"].type
            new_weights = new_node(unique_name(conv.name + "_weights", taken), "")
            lazy.make_stand_in(new_weights, source.then(ScaleFold(factor)), dtype)
        else:
            weights = const_array(weights_node)
            if weights is None or weights_node is None:
                continue
            folded = folded_values(conv.op, weights, *params, bias=bias)
            if folded is None:
                continue
            scaled, offset = folded
            dtype = weights_node.attr["dtype"].type
            new_weights = const_node(unique_name(conv.name + "_weights", taken), scaled, dtype)
        new_offset = const_node(unique_name(conv.name + "_bn_offset", taken), offset, dtype)
        new_conv = copy_node(conv)
        new_conv.input[list(conv.input).index(conv_inputs[1])] = new_weights.name
        bias_add = new_node(bn.name, "BiasAdd", bn.device)
        bias_add.input.extend([conv.name, new_offset.name])
        chain = [bn] + ([bias_node] if bias_node is not None else [])
        bias_add.input.extend(merged_control_inputs(chain, exclude=[conv.name]))
        bias_add.attr["T"].CopyFrom(conv.attr["T"])
        bias_add.attr["data_format"].s = b"NHWC"
        plan.put(conv.name, [new_weights, new_conv])
        plan.put(bn.name, [new_offset, bias_add])
        if bias_node is not None:
            plan.put(bias_node.name, [])
            plan.drop_if_unused(node_name(data_inputs(bias_node)[1]))
        plan.drop_if_unused(weights_node.name, *(node_name(r) for r in data_inputs(bn)[1:]))
    return apply_plan(graph_def, plan, keep_names)
