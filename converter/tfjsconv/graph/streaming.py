"""Large weights stay on disk until the writer needs them.

A SavedModel's variables live in its checkpoint (``variables.index`` +
``variables.data-*``), which TensorFlow reads one tensor at a time.  Instead of
restoring every variable into memory, freezing the graph (a second copy as Consts)
and handing that to grappler (more copies), the SavedModel is loaded without its
checkpoint and each large variable is frozen as a value-less *stand-in*: a
``VariableV2`` node of the same dtype and shape (the weight stash's stand-in, marked
by its ``container`` attr) that names a checkpoint key.  The graph pipeline runs on
stand-ins; the weight writer reads each tensor when it writes it, quantizes it,
appends it to the current shard and drops it.

A stand-in stays value-less only while the graph optimizer provably treats it as
opaque (the weight stash's rules, ``weight_stash._candidates``); any other use
(grappler could fold it) reads its value into a real Const first
(``materialize``), which gives exactly the graph a fully-loaded model gives.
Folds that change a large weight's values are replayed on the streamed tensor
(``LazyTensor.steps``): grappler's multiply push-down into a conv filter
(``graph.stream_folds``, TF's arithmetic reproduced bit for bit) and batch-norm
folding (the rewrite's own arithmetic).

Small variables (below ``min_bytes``: biases, BN statistics, shapes) are read into
memory at freeze time like before.

The stash rules ask about a large weight's values (all equal or NaN? equal to another
constant?) before grappler runs, and reading a tensor only to answer would read every
large weight twice. So ``LazyWeights`` first answers *optimistically* (varied values,
no duplicate: what trained weights are) and checks each answer on the read that writes
the tensor (``LazyTensor.on_read``); a wrong answer raises ``StreamingRetry`` and the
conversion runs again with answers read first, so the output never depends on a guess.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Set, Tuple

import numpy as np

from tfjsconv.errors import ConversionError

# The ``container`` attr that marks a stand-in for a weight read later.
STAND_IN_CONTAINER = b"tfjsconv.lazy"
STAND_IN_OP = "VariableV2"


class StreamingUnsupported(Exception):
    """This model cannot be converted lazily (the caller loads it fully instead)."""


class StreamingRetry(Exception):
    """An optimistic answer about a streamed weight proved wrong when it was read (a
    uniform/NaN or duplicated large weight): convert again, reading values first."""


class WeightSource(Protocol):
    """Where streamed weights are read from, one at a time, by key."""

    prefix: str
    shapes: Dict[str, List[int]]

    def read(self, key: str) -> np.ndarray: ...


class CheckpointSource:
    """One tensor at a time from a TF checkpoint (``tf.train.load_checkpoint``'s reader)."""

    def __init__(self, prefix: str):
        from tensorflow.python.training import py_checkpoint_reader

        self.prefix = prefix
        try:
            self._reader = py_checkpoint_reader.NewCheckpointReader(prefix)
        except Exception as e:  # corrupt/truncated index: TF raises various types
            raise ConversionError(
                f"cannot read the SavedModel's variables ({prefix}): {type(e).__name__}: {_first_line(e)}"
            ) from e
        self.shapes: Dict[str, List[int]] = self._reader.get_variable_to_shape_map()
        self.dtypes: Dict[str, Any] = self._reader.get_variable_to_dtype_map()

    def read(self, key: str) -> np.ndarray:
        try:
            value = self._reader.get_tensor(key)
        except Exception as e:
            raise ConversionError(
                f"cannot read variable {key} from {self.prefix}: {type(e).__name__}: {_first_line(e)}"
            ) from e
        return np.asarray(value)

    def object_graph(self):
        """The checkpoint's TrackableObjectGraph (which object owns which key)."""
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        key = "_CHECKPOINTABLE_OBJECT_GRAPH"
        if key not in self.shapes:
            raise StreamingUnsupported("the checkpoint has no object graph (a TF1 checkpoint)")
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(self._reader.get_tensor(key))
        return graph


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def saved_model_checkpoint(path: str) -> Optional[str]:
    """The checkpoint prefix of a SavedModel directory, or None if it has none."""
    prefix = os.path.join(path, "variables", "variables")
    return prefix if os.path.isfile(prefix + ".index") else None


def variable_keys(root: Any, source: CheckpointSource) -> Dict[int, str]:
    """``id(variable)`` -> checkpoint key, for every variable reachable from ``root``.

    Walks the checkpoint's object graph and the loaded objects together, by child name
    (what ``tf.saved_model.load`` does to restore them).
    """
    from tensorflow.python.checkpoint.trackable_view import TrackableView

    graph = source.object_graph()
    keys: Dict[int, str] = {}
    pending: List[Tuple[int, Any]] = [(0, root)]
    seen = set()
    while pending:
        node_id, obj = pending.pop()
        if node_id in seen or node_id >= len(graph.nodes):
            continue
        seen.add(node_id)
        proto = graph.nodes[node_id]
        for attribute in proto.attributes:
            if attribute.name == "VARIABLE_VALUE":
                keys[id(obj)] = attribute.checkpoint_key
        if not proto.children:
            continue
        try:
            children = TrackableView.children(obj)
        except Exception:  # objects that cannot list children hold no variables we need
            continue
        for child in proto.children:
            value = children.get(child.local_name)
            if value is not None:
                pending.append((child.node_id, value))
    return keys


def variable_keys_v1(root: Any, source: CheckpointSource) -> Dict[int, str]:
    """``id(variable)`` -> checkpoint key for a TF1 SavedModel's resource variables
    (``load_v1_in_v2``'s ``root.variables``): a TF1 Saver names each variable's value by
    its op name.  Any variable without a key of its name, dtype and shape makes the
    model load whole."""
    keys: Dict[int, str] = {}
    for variable in getattr(root, "variables", None) or []:
        key = variable.name.split(":")[0]
        shape = source.shapes.get(key)
        if shape is None or list(shape) != [int(d) for d in variable.shape]:
            raise StreamingUnsupported(f"TF1 variable {key} has no checkpoint value of its shape")
        if np.dtype(source.dtypes[key].as_numpy_dtype) != np.dtype(variable.dtype.as_numpy_dtype):
            raise StreamingUnsupported(f"TF1 variable {key} is stored as another dtype")
        keys[id(variable)] = key
    return keys  # empty for ref variables: ``stand_in_converter_data`` finds them by name


@dataclasses.dataclass
class LazyTensor:
    """A weight read from the checkpoint when needed, then transformed by ``steps``."""

    source: WeightSource
    key: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    # Value folds, applied in order: ("mul", constant, constant first) is grappler's
    # multiply push-down, ("scale", factor) batch-norm folding.
    steps: Tuple[Tuple[Any, ...], ...] = ()
    # (stage, callback): each read shows the callback the value after ``stage`` steps
    # (checks optimistic answers given about the weight as it was at that stage).
    watchers: Tuple[Tuple[int, Callable[[np.ndarray], None]], ...] = ()

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
            if step[0] == "mul":
                from tfjsconv.graph.stream_folds import grappler_multiply

                value = grappler_multiply(value, step[1], step[2])
            else:
                # fold_batch_norms.scaled_weights' arithmetic, on the streamed tensor.
                from tfjsconv.graph.rewrites.fold_batch_norms import scaled_weights

                value = scaled_weights(value, step[1])
            self._show(stage, value)
        return value

    def _show(self, stage: int, value: np.ndarray) -> None:
        for at, callback in self.watchers:
            if at == stage:
                callback(value)

    def scaled(self, factor: np.ndarray) -> "LazyTensor":
        """This tensor times a batch norm's per-channel ``factor``."""
        return dataclasses.replace(self, steps=self.steps + (("scale", factor),))

    def multiplied(self, constant: np.ndarray, constant_first: bool) -> "LazyTensor":
        """This tensor times ``constant`` as grappler's constant folding computes it."""
        return dataclasses.replace(self, steps=self.steps + (("mul", constant, constant_first),))


class LazyWeights:
    """Stand-in node name -> LazyTensor, plus the value statistics the stash rules need."""

    def __init__(self, source: WeightSource, min_bytes: int, optimistic: bool = True):
        self.source = source
        self.min_bytes = min_bytes
        self.optimistic = optimistic
        self.tensors: Dict[str, LazyTensor] = {}
        self._stats: Dict[str, Tuple[bool, bytes]] = {}
        # Optimistic mode, by the stand-in's name when the answer was given:
        self._claimed_varied: Set[str] = set()  # answered "not uniform, no NaN"
        self._observed: Dict[str, Tuple[bool, bytes]] = {}  # (uniform or NaN, fingerprint) as read
        self._groups: List[List[Tuple[str, Optional[bytes]]]] = []  # candidates for duplicates
        self._watched: Set[str] = set()

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

    def renamed(self, graph_def, renames: Dict[str, str]) -> None:
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

    def note_group(self, members: Sequence[Tuple[str, Optional[bytes]]]) -> None:
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
            from tfjsconv.graph.weight_stash import content_fingerprint, uniform_or_nan_array

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

    def stats(self, name: str) -> Tuple[bool, bytes]:
        """(uniform or NaN, fingerprint of the bytes), as ``weight_stash`` computes them
        for a Const: one read of the tensor, cached."""
        if name not in self._stats:
            from tfjsconv.graph.weight_stash import content_fingerprint, uniform_or_nan_array

            value = np.ascontiguousarray(self.tensors[name].read())
            self._stats[name] = (uniform_or_nan_array(value), content_fingerprint(value))
            del value
        return self._stats[name]

    def digest(self, name: str) -> bytes:
        """Full digest of the bytes (only when fingerprints collide: a likely duplicate)."""
        from tfjsconv.graph.weight_stash import content_digest

        return content_digest(np.ascontiguousarray(self.tensors[name].read()))


def stand_in_converter_data(base: type, keys: Dict[int, str], lazy: LazyWeights) -> type:
    """A ``_FunctionConverterDataInEager`` subclass that reads variables from the
    checkpoint: small ones by value, large ones as stand-ins (fixed up by
    ``finish_freeze``).  Captured (resource) variables are found by ``keys``; a TF1 ref
    variable (a ``VariableV2`` node inside the function, which TensorFlow would read by
    running the graph) by its node name, the key a TF1 ``Saver`` gives its value."""
    from tensorflow.python.framework import convert_to_constants as c2c
    from tensorflow.python.framework import dtypes

    class _StandInData(base):
        def _eval(self, tensor):
            key = keys.get(id(tensor))
            if key is None:
                handle = getattr(tensor, "handle", None)
                if handle is None:
                    # A captured constant, not a variable: its value is in memory anyway.
                    return tensor.numpy()
                raise StreamingUnsupported("a captured variable is not in the checkpoint")
            return self._value(key, dtypes.as_dtype(tensor.dtype).as_numpy_dtype)

        def _build_tensor_data(self):
            # Ref variables first: the base class skips those already in tensor_data.
            for node in self.node_defs.values():
                if node.op != "VariableV2" or not self._should_convert(node.name):
                    continue
                declared = [d.size for d in node.attr["shape"].shape.dim]
                if list(lazy.source.shapes.get(node.name, [None])) != declared:
                    raise StreamingUnsupported(
                        f"TF1 variable {node.name} has no checkpoint value of its shape"
                    )
                dtype_enum = node.attr["dtype"].type
                value = self._value(node.name, dtypes.as_dtype(dtype_enum).as_numpy_dtype)
                self._tensor_data[node.name] = c2c._TensorData(numpy=value, dtype=dtype_enum, index=None)
            super()._build_tensor_data()

        def _value(self, key: str, dtype: Any) -> np.ndarray:
            shape = lazy.source.shapes.get(key)
            if shape is None:
                raise StreamingUnsupported(f"{key} is not in the checkpoint")
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if nbytes < lazy.min_bytes or np.dtype(dtype).kind not in "fiucb":
                value = lazy.source.read(key)
                if value.dtype != np.dtype(dtype):
                    raise StreamingUnsupported(f"{key} is stored as {value.dtype}, not {np.dtype(dtype)}")
                return value
            marker = np.zeros((0,), dtype=dtype)
            pending = self.__dict__.setdefault("_tfjsconv_pending", {})
            pending[id(marker)] = (
                marker,
                LazyTensor(lazy.source, key, np.dtype(dtype), tuple(int(d) for d in shape)),
            )
            return marker

    return _StandInData


def finish_freeze(graph_def, data: Any, lazy: LazyWeights) -> None:
    """Turn the placeholder Consts of large variables into stand-ins (in place)."""
    pending = data.__dict__.get("_tfjsconv_pending", {})
    if not pending:
        return
    by_node = {}
    for name, tensor_data in data.tensor_data.items():
        entry = pending.get(id(tensor_data.numpy))
        if entry is not None:
            by_node[name] = (entry[1], tensor_data.dtype)
    for node in graph_def.node:
        if node.name in by_node and node.op == "Const":
            tensor, dtype_enum = by_node.pop(node.name)
            lazy.make_stand_in(node, tensor, dtype_enum)
    if by_node:
        raise StreamingUnsupported("a variable was frozen inside a function body")


def check_graph_size(graph_def, what: str) -> None:
    """Protobuf cannot hold a message over 2 GiB: say so in one line."""
    size = graph_def.ByteSize()
    if size >= 2**31:
        raise ConversionError(
            f"the {what} is {size / 2**30:.1f} GiB, over protobuf's 2 GiB message limit: its "
            "weights are used by constant folding so they cannot stay on disk; convert a "
            "model whose large weights feed MatMul/Conv2D directly"
        )


def extract_weights(
    graph_def,
    initializer_graph_def,
    lazy: Optional[LazyWeights],
    extract: Callable[..., List[Tuple[str, Any]]],
) -> List[Tuple[str, Any]]:
    """``extract.extract_weights`` where stand-ins yield their LazyTensor, in the same
    order (graph nodes, library functions, then the same for the initializer graph)."""
    if lazy is None or not lazy.tensors:
        return extract(graph_def, initializer_graph_def)
    weights: List[Tuple[str, Any]] = []
    for graph in (graph_def, initializer_graph_def):
        if graph is None:
            continue
        order = [n.name for n in graph.node if n.op == "Const" or lazy.is_stand_in(n)]
        stand_ins = [n for n in graph.node if lazy.is_stand_in(n)]
        values: Dict[str, Any] = {n.name: lazy.tensors[n.name] for n in stand_ins}
        n_consts = sum(1 for n in graph.node if n.op == "Const")
        taken = extract(graph, None)
        values.update(taken[:n_consts])
        for node in stand_ins:
            lazy.const_shell(node)
        weights.extend((name, values[name]) for name in order)
        weights.extend(taken[n_consts:])
    return weights


def lazy_names(weights: Sequence[Tuple[str, Any]]) -> List[str]:
    return [name for name, value in weights if isinstance(value, LazyTensor)]
