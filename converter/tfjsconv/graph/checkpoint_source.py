"""The checkpoint of a SavedModel, read one variable at a time, and the keys of the
variables a loaded model holds (``graph.streaming`` freezes them as stand-ins)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError, first_line


class StreamingUnsupported(Exception):
    """This model cannot be converted lazily (the caller loads it fully instead)."""


class CheckpointSource:
    """One tensor at a time from a TF checkpoint (``tf.train.load_checkpoint``'s reader)."""

    def __init__(self, prefix: str):
        from tensorflow.python.training import py_checkpoint_reader

        self.prefix = prefix
        try:
            self._reader = py_checkpoint_reader.NewCheckpointReader(prefix)
        except Exception as e:  # corrupt/truncated index: TF raises various types
            raise ConversionError(
                f"cannot read the SavedModel's variables ({prefix}): {type(e).__name__}: {first_line(e)}"
            ) from e
        self.shapes: dict[str, list[int]] = self._reader.get_variable_to_shape_map()
        self.dtypes: dict[str, Any] = self._reader.get_variable_to_dtype_map()

    def read(self, key: str) -> np.ndarray:
        try:
            value = self._reader.get_tensor(key)
        except Exception as e:
            raise ConversionError(
                f"cannot read variable {key} from {self.prefix}: {type(e).__name__}: {first_line(e)}"
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


def saved_model_checkpoint(path: str) -> str | None:
    """The checkpoint prefix of a SavedModel directory, or None if it has none."""
    prefix = os.path.join(path, "variables", "variables")
    return prefix if os.path.isfile(prefix + ".index") else None


def variable_keys(root: Any, source: CheckpointSource) -> dict[int, str]:
    """``id(variable)`` -> checkpoint key, for every variable reachable from ``root``.

    Walks the checkpoint's object graph and the loaded objects together, by child name
    (what ``tf.saved_model.load`` does to restore them).
    """
    from tensorflow.python.checkpoint.trackable_view import TrackableView

    graph = source.object_graph()
    keys: dict[int, str] = {}
    pending: list[tuple[int, Any]] = [(0, root)]
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


def variable_keys_v1(root: Any, source: CheckpointSource) -> dict[int, str]:
    """``id(variable)`` -> checkpoint key for a TF1 SavedModel's resource variables
    (``load_v1_in_v2``'s ``root.variables``): a TF1 Saver names each variable's value by
    its op name.  Any variable without a key of its name, dtype and shape makes the
    model load whole."""
    keys: dict[int, str] = {}
    for variable in getattr(root, "variables", None) or []:
        key = variable.name.split(":")[0]
        shape = source.shapes.get(key)
        if shape is None or list(shape) != [int(d) for d in variable.shape]:
            raise StreamingUnsupported(f"TF1 variable {key} has no checkpoint value of its shape")
        if np.dtype(source.dtypes[key].as_numpy_dtype) != np.dtype(variable.dtype.as_numpy_dtype):
            raise StreamingUnsupported(f"TF1 variable {key} is stored as another dtype")
        keys[id(variable)] = key
    return keys  # empty for ref variables: ``stand_in_converter_data`` finds them by name
