"""Weights read from the checkpoint when the writer needs them (see ``graph.streaming``).

``LazyTensor`` is one value-less weight and the folds (``Fold``) replayed on it when it is
read; ``LazyWeights`` maps stand-in nodes to them and answers the weight stash's
questions about their values (optimistically, checked on the read; ``StreamingRetry``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.graph.weight_values import content_digest, content_fingerprint, uniform_or_nan_array

STAND_IN_CONTAINER = b"tfjsconv.lazy"
STAND_IN_OP = "VariableV2"


class StreamingRetry(Exception):
    """An optimistic answer about a streamed weight proved wrong when it was read (a
    uniform/NaN or duplicated large weight): convert again, reading values first."""


class WeightSource(Protocol):
    """Where streamed weights are read from, one at a time, by key."""

    prefix: str
    shapes: dict[str, list[int]]

    def read(self, key: str) -> np.ndarray: ...


class Fold(Protocol):
    """A change of a weight's values made by a graph rewrite (grappler's multiply
    push-down, batch-norm folding), replayed on the streamed tensor when it is read.
    The rewrite that makes the fold defines it, so this module needs none of them."""

    def apply(self, value: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass
class LazyTensor:
    """A weight read from the checkpoint when needed, then transformed by ``steps``."""

    source: WeightSource
    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    # Value folds, applied in order when the tensor is read.
    steps: tuple[Fold, ...] = ()
    # (stage, callback): each read shows the callback the value after ``stage`` steps
    # (checks optimistic answers given about the weight as it was at that stage).
    watchers: tuple[tuple[int, Callable[[np.ndarray], None]], ...] = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def read(self) -> np.ndarray:
        """The value (a fresh array the caller owns)."""
        value = self.source.read(self.key)
        if value.dtype != self.dtype or tuple(value.shape) != self.shape:
            raise ConversionError(
                f"variable {self.key} in the checkpoint has dtype {value.dtype} and shape "
                f"{list(value.shape)}, the model declares {self.dtype} {list(self.shape)}"
            )
        self._show(0, value)
        for stage, step in enumerate(self.steps, 1):
            value = step.apply(value)
            self._show(stage, value)
        return value

    def _show(self, stage: int, value: np.ndarray) -> None:
        for at, callback in self.watchers:
            if at == stage:
                callback(value)

    def then(self, fold: Fold) -> LazyTensor:
        """This tensor with ``fold`` applied after its other steps."""
        return dataclasses.replace(self, steps=self.steps + (fold,))


class LazyWeights:
    """Stand-in node name -> LazyTensor, plus the value statistics the stash rules need."""

    def __init__(self, source: WeightSource, min_bytes: int, optimistic: bool = True):
        self.source = source
        self.min_bytes = min_bytes
        self.optimistic = optimistic
        self.tensors: dict[str, LazyTensor] = {}
        self._stats: dict[str, tuple[bool, bytes]] = {}
        # Optimistic mode, by the stand-in's name when the answer was given:
        self._claimed_varied: set[str] = set()  # answered "not uniform, no NaN"
        self._observed: dict[str, tuple[bool, bytes]] = {}  # (uniform or NaN, fingerprint) as read
        self._groups: list[list[tuple[str, bytes | None]]] = []  # candidates for duplicates
        self._watched: set[str] = set()

    # -- stand-in nodes

    def is_stand_in(self, node) -> bool:
        return (
            node.op == STAND_IN_OP
            and "container" in node.attr
            and node.attr["container"].s == STAND_IN_CONTAINER
            and node.name in self.tensors
        )

    def make_stand_in(self, node, tensor: LazyTensor, dtype_enum: int) -> None:
        """Turn ``node`` (in place) into the stand-in of ``tensor``."""
        node.ClearField("input")
        node.op = STAND_IN_OP
        node.attr.clear()
        node.attr["dtype"].type = dtype_enum
        for dim in tensor.shape:
            node.attr["shape"].shape.dim.add(size=int(dim))
        node.attr["shape"].shape.SetInParent()
        node.attr["shared_name"].s = node.name.encode("utf-8")
        node.attr["container"].s = STAND_IN_CONTAINER
        self.tensors[node.name] = tensor

    def renamed(self, graph_def, renames: dict[str, str]) -> None:
        """Follow ``freeze.rename_numeric_nodes`` (old -> new node names)."""
        new_names = {new for old, new in renames.items() if old in self.tensors}
        for old, new in renames.items():
            if old in self.tensors:
                self.rename(old, new)
        for node in graph_def.node:
            if node.name in new_names:
                node.attr["shared_name"].s = node.name.encode("utf-8")

    def rename(self, old: str, new: str) -> None:
        self.tensors[new] = self.tensors.pop(old)
        if old in self._stats:
            self._stats[new] = self._stats.pop(old)

    def replace(self, node, new_name: str, tensor: LazyTensor) -> None:
        """Rename the stand-in ``node`` (in place) and make it stand for ``tensor``
        (a fold of its old value: cached statistics are dropped)."""
        del self.tensors[node.name]
        self._stats.pop(node.name, None)
        node.name = new_name
        node.attr["shared_name"].s = new_name.encode("utf-8")
        self.tensors[new_name] = tensor

    def const_shell(self, node) -> None:
        """Turn a stand-in (in place) into the value-less Const the writer leaves in
        model.json (``dtype`` and ``value`` with dtype and shape, as ``extract`` does)."""
        dtype = node.attr["dtype"].type
        shape = type(node.attr["shape"].shape)()
        shape.CopyFrom(node.attr["shape"].shape)
        node.op = "Const"
        node.attr.clear()
        node.attr["dtype"].type = dtype
        node.attr["value"].tensor.dtype = dtype
        node.attr["value"].tensor.tensor_shape.CopyFrom(shape)

    def materialize(self, node) -> None:
        """Read the stand-in's value into a real Const (in place); the graph then
        equals the fully-loaded model's."""
        from tensorflow.python.framework import tensor_util

        tensor = self.tensors.pop(node.name)
        self._stats.pop(node.name, None)
        dtype = node.attr["dtype"].type
        value = tensor.read()
        node.op = "Const"
        node.attr.clear()
        node.attr["dtype"].type = dtype
        node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value, dtype, value.shape))
        del value

    def materialize_all(self, graph_def) -> None:
        for node in graph_def.node:
            if self.is_stand_in(node):
                self.materialize(node)

    # -- what the stash rules need to know about a value

    def uniform_or_nan(self, name: str) -> bool:
        """Whether the weight's elements are all equal or include NaN (grappler could use it)."""
        if self.optimistic:
            self._watch(name)
            self._claimed_varied.add(name)
            return False
        return self.stats(name)[0]

    def fingerprint(self, name: str) -> bytes:
        """``weight_stash.content_fingerprint`` of the weight (optimistic: one no other has)."""
        if self.optimistic:
            self._watch(name)
            return b"unread:" + name.encode("utf-8")
        return self.stats(name)[1]

    def note_group(self, members: Sequence[tuple[str, bytes | None]]) -> None:
        """Constants of one dtype and shape, one of them a streamed weight the stash may take:
        (name, fingerprint of a Const's bytes, or None for a stand-in answered unread)."""
        if self.optimistic:
            self._groups.append(list(members))

    def _watch(self, name: str) -> None:
        """Check answers about ``name`` on each read of its value as it is now (a fold
        made later adds steps; the answer was about the value before them)."""
        if name in self._watched:
            return
        self._watched.add(name)
        tensor = self.tensors[name]

        def observe(value: np.ndarray) -> None:
            value = np.ascontiguousarray(value)
            seen = (uniform_or_nan_array(value), content_fingerprint(value))
            self._observed[name] = seen
            if seen[0] and name in self._claimed_varied:
                raise StreamingRetry(f"{tensor.key} is uniform or holds NaN")

        self.tensors[name] = dataclasses.replace(
            tensor, watchers=tensor.watchers + ((len(tensor.steps), observe),)
        )

    def verify(self) -> None:
        """After the last read: raise ``StreamingRetry`` if an optimistic answer was wrong.
        A weight never read is in no output (its stand-in was pruned as unreachable, which
        does not depend on its values), so its answer could not change the result."""
        for name in sorted(self._claimed_varied):
            if self._observed.get(name, (False, b""))[0]:
                raise StreamingRetry(f"{self.source.prefix}: {name} is uniform or holds NaN")
        for members in self._groups:
            prints = [
                fp if fp is not None else self._observed.get(name, (False, None))[1] for name, fp in members
            ]
            known = [fp for fp in prints if fp is not None]
            if len(set(known)) < len(known):
                raise StreamingRetry("two large weights may be equal")

    def stats(self, name: str) -> tuple[bool, bytes]:
        """(uniform or NaN, fingerprint of the bytes), as ``weight_stash`` computes them
        for a Const: one read of the tensor, cached."""
        if name not in self._stats:
            value = np.ascontiguousarray(self.tensors[name].read())
            self._stats[name] = (uniform_or_nan_array(value), content_fingerprint(value))
            del value
        return self._stats[name]

    def digest(self, name: str) -> bytes:
        """Full digest of the bytes (only when fingerprints collide: a likely duplicate)."""
        return content_digest(np.ascontiguousarray(self.tensors[name].read()))
