"""Keep large weights out of grappler, where they cost ~9 copies of RSS.

Grappler copies its input graph many times over (Python -> C++ parse, GrapplerItem,
each optimizer's output, the serialized result, the Python parse): on MobileNetV2
the 14 MB of weights cost ~120 MB of peak RSS per run, and on a 374 MB model they
made the conversion peak at 12 copies of the weights.  Grappler only needs a
constant's *value* when it can fold or simplify something with it, so constants
whose value cannot matter are swapped for value-less stand-ins of the same dtype
and shape while grappler runs, then put back by name.

A constant is stashed only when grappler provably treats it as opaque:

* its only data consumers read it as the filter/weights input of ``Conv2D``,
  ``DepthwiseConv2dNative`` or ``MatMul``, or as the table of a ``GatherV2``; those ops
  have a non-constant data input (else they would consume a constant-derived value,
  and fold);
* no ``Mul``/``Div`` sits right before or after a conv, also across the addition of an
  all-zero constant (grappler folds a scalar multiply into conv filters:
  ``FoldMultiplyIntoConv``, ``MulConvPushDown``; neither applies to ``MatMul``, so a
  scaled MatMul's weights are stashed; a streamed filter with a constant ``Mul`` right
  after its conv is folded before grappler runs, ``stream_folds``);
* its value is not uniform (all zeros / all ones simplify ``MatMul``; uniform tensors
  are re-encoded by constant compression) and contains no NaN;
* no other constant has the same bytes (grappler would de-duplicate the pair);
* it is not fetched.

A test runs the whole optimization with and without the stash on the test models
(and on graphs built to trip each rule) and requires the same nodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import numpy as np

from tfjsconv.graph.graph_utils import GraphIndex, const_array, keep_set, node_name, numpy_dtype, output_index
from tfjsconv.graph.weight_values import content_digest, content_fingerprint, uniform_or_nan_array

if TYPE_CHECKING:
    from tfjsconv.graph.lazy_weights import LazyWeights

# Below this many bytes a constant is not worth the bookkeeping.
DEFAULT_MIN_BYTES = 4096

# op -> (input that reads the weight, input that carries the data).
_WEIGHT_CONSUMERS = {
    "Conv2D": (1, 0),
    "DepthwiseConv2dNative": (1, 0),
    "MatMul": (1, 0),
    "GatherV2": (0, 1),  # an embedding table looked up by (non-constant) ids
}
_PASS_THROUGH = frozenset({"Identity", "Snapshot", "Transpose", "Cast", "Reshape"})
_SCALING = frozenset({"Mul", "MulNoNan", "RealDiv", "Div", "DivNoNan"})
# Adding an all-zero constant is simplified away by grappler, which can then bring a
# scale next to the conv before it (a Keras 3 conv's zero bias before a batch norm).
_ADDING = frozenset({"Add", "AddV2", "BiasAdd", "Sub"})
# What keeps a constant's values (zeros stay zeros) on the way to such an addition.
_RESHAPING = _PASS_THROUGH | {"Squeeze", "ExpandDims"}
# Ops whose weights grappler folds a neighbouring constant multiply into.
_SCALE_FOLDING = frozenset({"Conv2D", "DepthwiseConv2dNative"})
# What a stashed weight becomes while grappler runs.  Not a Placeholder: grappler
# treats every Placeholder as a feed and forgets its static shape, which changes
# shape-dependent rewrites.  A TF1 variable keeps its exact shape (from its attr),
# and being stateful it is never folded or de-duplicated.
_STAND_IN = "VariableV2"


@dataclasses.dataclass
class Stash:
    """Constants taken out of a graph: name -> (Const NodeDef without its bytes, bytes)."""

    entries: dict[str, tuple[object, bytes]]
    # Streamed weights' stand-ins (``streaming``) that were opaque to this run.
    stand_ins: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return sorted(self.entries)

    @property
    def nbytes(self) -> int:
        return sum(len(content) for _, content in self.entries.values())


def fold_const_identities(graph_def, keep: Sequence[str], lazy: LazyWeights | None = None) -> int:
    """``Const -> Identity`` (the Const read only there) becomes one Const named as the
    Identity, in place, as grappler's constant folding would do; returns the count.

    Frozen graphs read every weight through such an Identity (ex ``ReadVariableOp``);
    folding it first lets ``stash`` see the weight's real consumer.  Stand-ins of
    streamed weights (``lazy``) fold like the Consts they stand for.
    """
    protected = keep_set(keep)
    folded = 0
    while True:
        index = GraphIndex(graph_def.node)
        doomed: set[str] = set()
        for node in index.nodes:
            if node.op != "Identity" or len(node.input) != 1 or node.name in protected:
                continue
            ref = node.input[0]
            source = index.get(ref)
            is_const = source is not None and (
                source.op == "Const" or (lazy is not None and lazy.is_stand_in(source))
            )
            if (
                source is None
                or not is_const
                or ref.startswith("^")
                or output_index(ref) != 0
                or index.consumers(source.name) != 1
                or source.name in protected
                or source.name in doomed
                or len(source.input)
            ):
                continue
            doomed.add(node.name)
            if lazy is not None and lazy.is_stand_in(source):
                lazy.rename(source.name, node.name)
                source.attr["shared_name"].s = node.name.encode("utf-8")
            source.name = node.name
        if not doomed:
            return folded
        for position in reversed(range(len(graph_def.node))):
            node = graph_def.node[position]
            if node.op == "Identity" and node.name in doomed:
                del graph_def.node[position]
                doomed.discard(node.name)
                folded += 1


def _uniform_or_nan(content: bytes, dtype_enum: int) -> bool:
    try:
        values = np.frombuffer(content, dtype=numpy_dtype(dtype_enum))
    except (TypeError, ValueError):
        return True  # not a plain numeric tensor: leave it to grappler
    return uniform_or_nan_array(values)


def _lazy(lazy: LazyWeights | None) -> LazyWeights:
    """``lazy`` where a value-less stand-in proves it was given."""
    assert lazy is not None, "a value-less stand-in without its LazyWeights"
    return lazy


def _variable_nodes(graph_def, constants: AbstractSet[str] = frozenset()) -> set[str]:
    """Nodes whose value depends on something other than constants (a Placeholder or
    any other input-less op that is not Const), found by propagating forward."""
    consumers: dict[str, list[str]] = {}
    pending: list[str] = []
    for node in graph_def.node:
        data = [ref for ref in node.input if not ref.startswith("^")]
        for ref in data:
            consumers.setdefault(node_name(ref), []).append(node.name)
        if not data and node.op != "Const" and node.name not in constants:
            pending.append(node.name)
    variable: set[str] = set(pending)
    while pending:
        for user in consumers.get(pending.pop(), []):
            if user not in variable:
                variable.add(user)
                pending.append(user)
    return variable


def _candidates(graph_def, keep: set[str], min_bytes: int, lazy: LazyWeights | None = None) -> list[str]:
    by_name = {node.name: node for node in graph_def.node}
    stand_ins = {node.name for node in graph_def.node if lazy is not None and lazy.is_stand_in(node)}
    variable = _variable_nodes(graph_def, stand_ins)
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in graph_def.node:
        for index, ref in enumerate(node.input):
            consumers.setdefault(node_name(ref), []).append((node, -1 if ref.startswith("^") else index))

    def producer(ref: str):
        node = by_name.get(node_name(ref))
        while (
            node is not None and node.op in _PASS_THROUGH and node.input and not node.input[0].startswith("^")
        ):
            node = by_name.get(node_name(node.input[0]))
        return node

    def adds_zero(user, index: int) -> bool:
        """``user`` adds an all-zero constant to its input ``index`` (grappler drops it)."""
        if user.op not in _ADDING or index not in (0, 1) or len(user.input) < 2:
            return False
        other = user.input[1 - index]
        if user.op == "Sub" and index == 1:
            return False  # 0 - x is not x
        source = by_name.get(node_name(other))
        while source is not None and source.op in _RESHAPING and source.input:
            source = by_name.get(node_name(source.input[0]))
        if other.startswith("^") or source is None or source.op != "Const" or source.name in stand_ins:
            return False
        value = const_array(source)
        return value is not None and value.size > 0 and value.dtype.kind in "fiu" and not value.any()

    def scaled_after(name: str) -> bool:
        # Iterative on purpose: a recursive closure is a reference cycle, which would
        # keep this graph's nodes (and so all its weights) alive until the next gc.
        pending, seen = [name], {name}
        while pending:
            for user, index in consumers.get(pending.pop(), []):
                if user.op in _SCALING:
                    return True
                through = user.op in _PASS_THROUGH or adds_zero(user, index)
                if through and user.name not in seen:
                    seen.add(user.name)
                    pending.append(user.name)
        return False

    def opaque_use(user, index: int) -> bool:
        if index == -1:
            return True  # a control edge orders, it does not read the value
        if user.op not in _WEIGHT_CONSUMERS:
            return False
        weight_index, data_index = _WEIGHT_CONSUMERS[user.op]
        if index != weight_index or len(user.input) <= max(weight_index, data_index):
            return False
        data_ref = user.input[data_index]
        if data_ref.startswith("^") or node_name(data_ref) not in variable:
            return False  # the op's data input is constant-derived: grappler would fold it
        data = producer(data_ref)
        if data is None:
            return False
        if user.op not in _SCALE_FOLDING:
            return True
        return data.op not in _SCALING and not scaled_after(user.name)

    # Constants are grouped by (dtype, shape, size) first and hashed only when a group
    # has two members: a streamed weight's bytes are read only when needed.
    groups: dict[tuple[int, bytes, int], list[tuple[str, object]]] = {}
    eligible: list[str] = []
    for node in graph_def.node:
        if node.name in stand_ins:
            assert lazy is not None
            dtype, shape = node.attr["dtype"].type, node.attr["shape"].shape
            size = lazy.tensors[node.name].nbytes
            content = None
        elif node.op == "Const" and "value" in node.attr:
            tensor = node.attr["value"].tensor
            dtype, shape, content = tensor.dtype, tensor.tensor_shape, tensor.tensor_content
            size = len(content)
        else:
            continue
        if size < min_bytes:
            continue
        groups.setdefault((dtype, shape.SerializeToString(), size), []).append((node.name, content))
        uses = consumers.get(node.name, [])
        if (
            node.name in keep
            or node.input
            or not uses
            or not all(opaque_use(user, index) for user, index in uses)
        ):
            continue
        uniform = (
            _lazy(lazy).uniform_or_nan(node.name) if content is None else _uniform_or_nan(content, dtype)
        )
        if not uniform:
            eligible.append(node.name)
    # Only duplicates of an eligible constant matter.  Fingerprints first, then full
    # digests among constants whose fingerprints collide.
    duplicated: set[str] = set()
    wanted = set(eligible)
    for members in groups.values():
        if len(members) < 2 or not any(name in wanted for name, _ in members):
            continue
        by_print: dict[bytes, list[tuple[str, object]]] = {}
        noted: list[tuple[str, bytes | None]] = []
        for name, content in members:
            fingerprint = _lazy(lazy).fingerprint(name) if content is None else content_fingerprint(content)
            by_print.setdefault(fingerprint, []).append((name, content))
            noted.append((name, None if content is None else fingerprint))
        if lazy is not None:
            lazy.note_group(noted)
        for same in by_print.values():
            if len(same) < 2:
                continue
            by_hash: dict[bytes, list[str]] = {}
            for name, content in same:
                digest = _lazy(lazy).digest(name) if content is None else content_digest(content)
                by_hash.setdefault(digest, []).append(name)
            duplicated.update(name for names in by_hash.values() if len(names) > 1 for name in names)
    return [name for name in eligible if name not in duplicated]


def stash(
    graph_def, keep: Sequence[str], min_bytes: int = DEFAULT_MIN_BYTES, lazy: LazyWeights | None = None
) -> Stash:
    """Swap opaque large Consts of ``graph_def`` (in place) for stand-ins.

    Streamed weights' stand-ins (``lazy``) that are not opaque get their value read
    in (``LazyWeights.materialize``): grappler then sees what a fully-loaded model
    gives it.
    """
    from tensorflow.core.framework import node_def_pb2

    protected = keep_set(keep)
    names = set(_candidates(graph_def, protected, min_bytes, lazy))
    entries: dict[str, tuple[object, bytes]] = {}
    stand_ins: list[str] = []
    for node in graph_def.node:
        if lazy is not None and lazy.is_stand_in(node):
            if node.name in names:
                stand_ins.append(node.name)
            else:
                lazy.materialize(node)
            continue
        if node.name not in names:
            continue
        tensor = node.attr["value"].tensor
        content = tensor.tensor_content
        # Clear before copying the node: a protobuf arena never shrinks, so copying
        # first and clearing after would keep a second copy of the bytes alive.
        tensor.ClearField("tensor_content")
        original = node_def_pb2.NodeDef()
        original.CopyFrom(node)
        dtype = node.attr["dtype"].type
        node.op = _STAND_IN
        node.attr.clear()
        node.attr["dtype"].type = dtype
        node.attr["shape"].shape.CopyFrom(original.attr["value"].tensor.tensor_shape)
        node.attr["shared_name"].s = node.name.encode("utf-8")
        entries[node.name] = (original, content)
    return Stash(entries=entries, stand_ins=tuple(stand_ins))


def restore(graph_def, stashed: Stash) -> None:
    """Put the stashed Consts back (in place); drop those grappler left unread.

    Consumes ``stashed``: each entry's bytes are released as soon as they are copied
    back, so the restore never holds two extra copies of the weights.
    """
    if not stashed.entries and not stashed.stand_ins:
        return
    read = GraphIndex(graph_def.node).refs
    lazy_unread = set(stashed.stand_ins) - set(read)
    for index in reversed(range(len(graph_def.node))):
        node = graph_def.node[index]
        if node.name in lazy_unread and node.op == _STAND_IN:
            del graph_def.node[index]  # as grappler would have pruned the unread Const
            continue
        if node.name not in stashed.entries or node.op != _STAND_IN:
            continue
        original, content = stashed.entries.pop(node.name)
        if node.name not in read:
            del graph_def.node[index]
            continue
        node.CopyFrom(original)
        node.attr["value"].tensor.tensor_content = content
        del content
    stashed.entries.clear()
