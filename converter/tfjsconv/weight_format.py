"""What the weight writer and reader share: the manifest dtypes, their storage and item
sizes, and the ``LazyArray`` protocol (the format itself: ``tfjsconv.weights``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from tfjsconv.formats import DEFAULT_SHARD_SIZE_BYTES as DEFAULT_SHARD_SIZE_BYTES

# Manifest dtype -> little-endian storage dtype (strings are handled separately).
_STORAGE: Mapping[str, str] = {
    "float32": "<f4",
    "int32": "<i4",
    "bool": "|u1",
    "complex64": "<c8",
}
_QUANT_STORAGE: Mapping[str, str] = {"uint8": "|u1", "uint16": "<u2", "float16": "<f2"}
_ITEMSIZE: Mapping[str, int] = {"float32": 4, "int32": 4, "bool": 1, "complex64": 8}
_QUANT_ITEMSIZE: Mapping[str, int] = {"uint8": 1, "uint16": 2, "float16": 2}

_INT32 = np.iinfo(np.int32)


def tfjs_dtype(dtype: np.dtype) -> str | None:
    """The dtype TensorFlow.js holds values of ``dtype`` in (it has only float32, int32,
    bool, complex64 and string), as the reference auto-converts weights; None: no such."""
    kind, size = dtype.kind, dtype.itemsize  # byte-order independent
    if kind == "f" and size in (2, 4, 8):
        return "float32"
    if kind in "iu" and size <= 8:
        return "int32"
    if kind == "b":
        return "bool"
    if kind == "c" and size in (8, 16):
        return "complex64"
    if kind in "USO":
        return "string"
    return None


class LazyArray(Protocol):
    """A weight whose values are read only when it is written."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int: ...

    def read(self) -> np.ndarray: ...


def _is_lazy(array: Any) -> bool:
    return (
        not isinstance(array, np.ndarray)
        and callable(getattr(array, "read", None))
        and isinstance(getattr(array, "dtype", None), np.dtype)
    )


WeightList = Sequence[tuple[str, np.ndarray | LazyArray]]
