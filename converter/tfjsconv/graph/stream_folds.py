"""Grappler's multiply push-down into a conv filter, replayed on a streamed filter.

``Conv2D(x, W) * C`` (C a constant scalar or per-output-channel vector) is folded by
grappler's constant folding (``MulConvPushDown``) into ``Conv2D(x, W * C)``: the conv
takes the ``Mul``'s name and the folded filter is named ``<conv>/merged_input``.  To
fold it grappler needs ``W``'s value, so a streamed filter would have to be read into
the graph (and copied by grappler several times).  This module does the same rewrite
before grappler runs, on the stand-in: the new stand-in's value is ``W * C`` computed
when the writer reads it (``LazyTensor.multiplied``), with TF's arithmetic.

It fires only where grappler provably would (its conditions, in the order it checks
them) and otherwise leaves the graph alone, so the stash's fallback (read the filter
in, let grappler fold) still gives the full load's graph.  A test compares both paths
byte for byte, including subnormal values (TF evaluates folds with denormals flushed
to zero, inputs and results).

Left to grappler (the filter is read in): a ``C`` that is not computed from constants
alone, a scalar ``Mul`` *before* a conv
(``FoldMultiplyIntoConv``, which looks through reshapes and transposes), a division
after a conv, ``Conv3D``, and dtypes other than float32.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    const_array,
    data_format,
    data_inputs,
    is_control,
    keep_set,
    node_name,
    output_index,
)

if TYPE_CHECKING:
    from tfjsconv.graph.lazy_weights import LazyWeights

_DT_FLOAT = 1
_TINY = np.finfo(np.float32).tiny
_CHUNK_ELEMENTS = 1 << 20  # 4 MiB of float32 per step: temporaries stay small


def _flush_denormals(values: np.ndarray) -> None:
    """Subnormal float32 values become zero of the same sign, in place (x86 FTZ/DAZ)."""
    small = np.abs(values) < _TINY  # subnormals and zeros
    if small.any():  # trained weights seldom hold either: then no scatter at all
        small &= values != 0
        values[small] = np.copysign(np.float32(0), values[small])


def grappler_multiply(value: np.ndarray, constant: np.ndarray, constant_first: bool) -> np.ndarray:
    """``value * constant`` (float32, ``constant`` broadcast on the last axis) as TF's
    constant folding computes it: denormal inputs and results flushed to zero.  Works
    in place on ``value`` (the caller's fresh array), in row slices (temporaries stay
    small) on up to two threads (numpy releases the GIL; slices are disjoint)."""
    factor = np.array(constant, dtype=np.float32).reshape(-1)
    _flush_denormals(factor)
    rows = value.reshape(-1, value.shape[-1] if value.ndim else 1)
    step = max(1, _CHUNK_ELEMENTS // max(1, rows.shape[1]))

    def fold(start: int) -> None:
        chunk = rows[start : start + step]
        _flush_denormals(chunk)
        if constant_first:
            np.multiply(factor, chunk, out=chunk)
        else:
            np.multiply(chunk, factor, out=chunk)
        _flush_denormals(chunk)

    starts = range(0, rows.shape[0], step)
    threads = min(2, os.cpu_count() or 1, len(starts))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fold, starts))
    else:
        for start in starts:
            fold(start)
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class MultiplyFold:
    """``grappler_multiply`` by a constant pushed into a conv filter, replayed on a streamed weight."""

    constant: np.ndarray
    constant_first: bool

    def apply(self, value: np.ndarray) -> np.ndarray:
        return grappler_multiply(value, self.constant, self.constant_first)


def _valid_const_shape(fmt: bytes, filter_shape: Sequence[int], const_shape: Sequence[int]) -> bool:
    """grappler's ``IsValidConstShapeForMulConvPushDown``."""
    if len(const_shape) <= len(fmt) and int(np.prod(const_shape, dtype=np.int64)) == 1:
        return True
    if fmt not in (b"NHWC", b"NDHWC") or len(const_shape) > len(filter_shape):
        return False
    # Broadcasting must leave the filter's shape, and only the last axis may exceed 1.
    tail = list(filter_shape[len(filter_shape) - len(const_shape) :])
    if any(c not in (1, f) for c, f in zip(const_shape, tail, strict=False)):
        return False
    return all(d <= 1 for d in const_shape[:-1])


def _uniform(values: np.ndarray, target: float) -> bool:
    return bool(values.size) and bool((values == target).all())


def push_muls_into_streamed_convs(graph_def, keep: Sequence[str], lazy: LazyWeights | None) -> int:
    """Fold ``Conv2D(x, W) * C`` where ``W`` is a streamed stand-in, in place, as grappler
    would; returns the number folded.

    ``C`` is a ``Const`` or a small subgraph of ``Const``s that grappler folds first (a
    Keras 3 batch norm's ``gamma * rsqrt(var + eps)``): that one is evaluated here by
    TensorFlow's own kernels, in one session run, as constant folding would.  As in
    grappler, the ``Mul`` node becomes the folded filter (a stand-in named
    ``<conv>/merged_input``, in the ``Mul``'s place) and the conv takes the ``Mul``'s
    name.  ``W`` stays only for the control edges that read it, a ``Const`` ``C`` only if
    something else reads it (grappler prunes what is left unread).
    """
    if lazy is None or not lazy.tensors:
        return 0
    protected = keep_set(keep)
    index = GraphIndex(graph_def.node)
    data_reads: dict[str, int] = {}
    for node in index.nodes:
        for ref in data_inputs(node):
            data_reads[node_name(ref)] = data_reads.get(node_name(ref), 0) + 1
    matches = [m for m in (_match(mul, index, data_reads, protected, lazy) for mul in index.nodes) if m]
    values = _constant_values(index, [m[2] for m in matches], lazy)
    doomed: set[str] = set()
    folded = 0
    for mul, conv, constant_node, constant_first in matches:
        weights = index.get(data_inputs(conv)[1])
        constant = values.get(constant_node.name)
        assert weights is not None
        if constant is None or not _foldable(constant, conv, lazy.tensors[weights.name].shape):
            continue
        mul_name, merged = mul.name, conv.name + "/merged_input"
        tensor = lazy.tensors[weights.name].then(MultiplyFold(constant, constant_first))
        mul.name = merged
        lazy.make_stand_in(mul, tensor, _DT_FLOAT)
        conv.input[list(conv.input).index(data_inputs(conv)[1])] = merged
        conv.name = mul_name
        doomed.update(n.name for n in (weights, constant_node) if index.consumers(n.name) == 1)
        folded += 1
    for position in reversed(range(len(graph_def.node))):
        node = graph_def.node[position]
        if node.name in doomed and (node.op == "Const" or lazy.is_stand_in(node)):
            doomed.discard(node.name)
            lazy.tensors.pop(node.name, None)
            del graph_def.node[position]
    return folded


def _match(mul, index: GraphIndex, data_reads: dict[str, int], protected: set[str], lazy: LazyWeights):
    """(Mul, conv, constant node, constant is the Mul's first input) where the graph has
    grappler's pattern around a streamed filter; the constant's value is checked later."""
    if mul.op != "Mul" or mul.attr["T"].type != _DT_FLOAT or len(mul.input) != 2:
        return None
    if any(is_control(ref) or output_index(ref) != 0 for ref in mul.input):
        return None
    left, right = index.get(mul.input[0]), index.get(mul.input[1])
    if left is None or right is None or left.name == right.name:
        return None
    constant_first = right.op == "Conv2D"
    constant_node, conv = (left, right) if constant_first else (right, left)
    if conv.op != "Conv2D" or constant_node.op == "Conv2D" or lazy.is_stand_in(constant_node):
        return None
    if not (mul.device == conv.device == constant_node.device):
        return None
    conv_data = data_inputs(conv)
    if len(conv_data) != 2 or conv.name in protected or data_reads.get(conv.name, 0) != 1:
        return None
    data, weights = index.get(conv_data[0]), index.get(conv_data[1])
    if data is None or weights is None or output_index(conv_data[1]) != 0:
        return None
    if data.op == "Const" or lazy.is_stand_in(data) or not lazy.is_stand_in(weights):
        return None
    if data_reads.get(weights.name, 0) != 1 or lazy.tensors[weights.name].dtype != np.float32:
        return None
    if index.get(conv.name + "/merged_input") is not None:
        return None
    return mul, conv, constant_node, constant_first


def _foldable(constant: np.ndarray, conv, filter_shape: Sequence[int]) -> bool:
    if constant.dtype != np.float32:
        return False
    # Constant folding simplifies ``x * 1`` and ``x * 0`` before it pushes a Mul down.
    if _uniform(constant, 1.0) or _uniform(constant, 0.0):
        return False
    return _valid_const_shape(data_format(conv), filter_shape, constant.shape)


# At most this many nodes in a constant subgraph evaluated for a fold (a batch norm's
# scale is ~5): anything bigger is left to grappler.
_MAX_SUBGRAPH = 32


def _constant_values(index: GraphIndex, nodes: Sequence, lazy: LazyWeights) -> dict[str, np.ndarray]:
    """Name -> value of each node that is a ``Const`` or computed from ``Const``s only
    (a small, stateless subgraph), the others left out.  Computed ones are evaluated in
    one TensorFlow session: the kernels constant folding runs, with its denormal flush."""
    values: dict[str, np.ndarray] = {}
    needed: dict[str, set[str]] = {}
    for node in nodes:
        if node.op == "Const":
            value = const_array(node)
            if value is not None:
                values[node.name] = value
            continue
        ancestors = _constant_ancestors(index, node, lazy)
        if ancestors is not None:
            needed[node.name] = ancestors
    if not needed:
        return values
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    subgraph = graph_pb2.GraphDef()
    for name in sorted(set().union(*needed.values())):
        subgraph.node.add().CopyFrom(index.by_name[name])
    names = sorted(needed)
    try:
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(subgraph, name="")
            with tf.compat.v1.Session(graph=graph) as session:
                results = session.run([name + ":0" for name in names])
    except Exception:  # noqa: BLE001 - grappler decides instead (the filter is read in)
        return values
    values.update((name, np.asarray(result)) for name, result in zip(names, results, strict=False))
    return values


def _constant_ancestors(index: GraphIndex, node, lazy: LazyWeights) -> set[str] | None:
    """``node`` and everything it reads, if all of it is stateless and rooted in
    ``Const``s (no input, stand-in, or function call); else None."""
    from tensorflow.python.framework import op_def_registry

    seen: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        if len(seen) > _MAX_SUBGRAPH or lazy.is_stand_in(current):
            return None
        op_def = op_def_registry.get(current.op)
        if op_def is None or op_def.is_stateful or (not current.input and current.op != "Const"):
            return None
        for ref in current.input:
            source = index.get(ref)
            if source is None:
                return None
            pending.append(source)
    return seen
