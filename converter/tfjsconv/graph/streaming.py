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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.graph.checkpoint_source import StreamingUnsupported
from tfjsconv.graph.lazy_weights import LazyTensor, LazyWeights


def stand_in_converter_data(base: type, keys: dict[int, str], lazy: LazyWeights) -> type:
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
    lazy: LazyWeights | None,
    extract: Callable[..., list[tuple[str, Any]]],
) -> list[tuple[str, Any]]:
    """``extract.extract_weights`` where stand-ins yield their LazyTensor, in the same
    order (graph nodes, library functions, then the same for the initializer graph)."""
    if lazy is None or not lazy.tensors:
        return extract(graph_def, initializer_graph_def)
    weights: list[tuple[str, Any]] = []
    for graph in (graph_def, initializer_graph_def):
        if graph is None:
            continue
        order = [n.name for n in graph.node if n.op == "Const" or lazy.is_stand_in(n)]
        stand_ins = [n for n in graph.node if lazy.is_stand_in(n)]
        values: dict[str, Any] = {n.name: lazy.tensors[n.name] for n in stand_ins}
        n_consts = sum(1 for n in graph.node if n.op == "Const")
        taken = extract(graph, None)
        values.update(taken[:n_consts])
        for node in stand_ins:
            lazy.const_shell(node)
        weights.extend((name, values[name]) for name in order)
        weights.extend(taken[n_consts:])
    return weights


def lazy_names(weights: Sequence[tuple[str, Any]]) -> list[str]:
    return [name for name, value in weights if isinstance(value, LazyTensor)]
