"""Size checks for the scan (``graph.scan``): constants that expand, and allocations
sized by constant shapes, bounded by ``MAX_EXPANDED_BYTES``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tfjsconv.graph.scan_graph import (
    _DTYPE_BYTES,
    _IDENTITY_OPS,
    _MAX_TRACE,
    _SHAPE_INPUTS,
    MAX_EXPANDED_BYTES,
    _Graph,
)
from tfjsconv.graph.scan_provenance import _producer


def _shape_elements(dims: Iterable[int]) -> int | None:
    total = 1
    for d in dims:
        if d < 0:
            return None
        total *= d
    return total


def _const_problem(node: Any) -> str | None:
    """A Const that expands to more than ``MAX_EXPANDED_BYTES`` beyond what it stores."""
    tensor = node.attr["value"].tensor if "value" in node.attr else None
    if tensor is None:
        return None
    elements = _shape_elements(d.size for d in tensor.tensor_shape.dim)
    if elements is None:
        return "a constant with a negative dimension"
    if tensor.tensor_content:
        return None  # TensorFlow requires content to match the shape exactly
    nbytes = elements * _DTYPE_BYTES.get(tensor.dtype, 8)
    if nbytes > MAX_EXPANDED_BYTES:
        return f"a constant that expands to {nbytes} bytes"
    return None


def _const_ints(graph: _Graph, ref: str) -> list[int] | None:
    """Integer values of the Const behind ``ref`` (through Identity), else None."""
    for _ in range(_MAX_TRACE):
        _, node = _producer(graph, ref)
        if node is None:
            return None
        if node.op in _IDENTITY_OPS and node.input:
            ref = node.input[0]
            continue
        if node.op != "Const":
            return None
        tensor = node.attr["value"].tensor
        if tensor.tensor_content:
            import numpy as np

            dtype = {3: np.int32, 9: np.int64}.get(tensor.dtype)
            if dtype is None:
                return None
            return [
                int(v) for v in np.frombuffer(tensor.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
            ]
        values = list(tensor.int_val) or list(tensor.int64_val)
        if not values:
            return None
        count = _shape_elements(d.size for d in tensor.tensor_shape.dim) or len(values)
        return [int(v) for v in values] + [int(values[-1])] * max(0, min(count, 64) - len(values))
    return None


def _allocation_problem(graph: _Graph, node: Any) -> str | None:
    index, kind = _SHAPE_INPUTS[node.op]
    data = [i for i in node.input if not i.startswith("^")]
    if kind == "attr":
        values: list[int] | None = (
            [d.size for d in node.attr["shape"].shape.dim] if "shape" in node.attr else None
        )
        kind = "shape"
    elif index >= len(data):
        return None
    else:
        values = _const_ints(graph, data[index])
    if values is None:
        return None
    elements = _shape_elements(values) if kind == "shape" else (values[0] if values else 0)
    if elements is None or elements < 0:
        return None  # TensorFlow rejects negative shapes before allocating
    dtype_attr = next((node.attr[k].type for k in ("dtype", "T", "element_dtype") if k in node.attr), 0)
    nbytes = elements * _DTYPE_BYTES.get(dtype_attr, 8)
    if nbytes > MAX_EXPANDED_BYTES:
        return f"{node.op} allocating {nbytes} bytes"
    return None
