"""Writing weight shards and the ``weightsManifest``, one weight at a time (format:
``tfjsconv.weights``)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tfjsconv import quantization as quant
from tfjsconv.errors import ConversionError
from tfjsconv.formats import DEFAULT_SHARD_SIZE_BYTES as DEFAULT_SHARD_SIZE_BYTES
from tfjsconv.weight_format import (
    _INT32,
    _ITEMSIZE,
    _QUANT_ITEMSIZE,
    _QUANT_STORAGE,
    _STORAGE,
    WeightList,
    _is_lazy,
    tfjs_dtype,
)

_log = logging.getLogger(__name__)


def _manifest_dtype(name: str, array: np.ndarray) -> str:
    """The tfjs dtype a weight is stored as (after the reference's auto-conversions)."""
    dtype = tfjs_dtype(array.dtype)
    if dtype is None:
        raise ConversionError(f"weight {name} has dtype {array.dtype}, which TensorFlow.js cannot store")
    return dtype


def _converted(name: str, array: np.ndarray, dtype: str) -> np.ndarray:
    """Return the array in the storage dtype, little-endian, C-contiguous."""
    if dtype == "int32" and array.dtype != np.int32 and array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo < _INT32.min or hi > _INT32.max:
            raise ConversionError(
                f"weight {name} has {array.dtype} values outside the int32 range "
                f"([{lo}, {hi}]); TensorFlow.js stores integers as int32"
            )
    if array.dtype.name != dtype:
        _log.info(
            "weight %s with shape %s and dtype %s was auto converted to the type %s",
            name,
            tuple(array.shape),
            array.dtype,
            dtype,
        )
    return np.ascontiguousarray(array, dtype=_STORAGE[dtype])


def _string_elements(name: str, array: np.ndarray) -> list[bytes]:
    out = []
    for item in array.reshape(-1).tolist():
        if isinstance(item, str):
            out.append(item.encode("utf-8"))
        elif isinstance(item, (bytes, bytearray)):
            out.append(bytes(item))
        else:
            raise ConversionError(
                f"weight {name} has dtype object holding {type(item).__name__} values; "
                "only str or bytes objects can be stored as a string weight"
            )
    return out


def _string_bytes(elements: Sequence[bytes]) -> Iterator[bytes]:
    for element in elements:
        if len(element) > 0xFFFFFFFF:
            raise ConversionError("a string weight element is longer than 4 GiB")
        yield len(element).to_bytes(4, "little")
        yield element


class _ShardWriter:
    """Writes a byte stream into ``group{g}-shard{i}of{n}.bin`` files of a fixed size."""

    def __init__(self, out_dir: str, group: int, num_shards: int, shard_size: int):
        self.paths = [f"group{group}-shard{i}of{num_shards}.bin" for i in range(1, num_shards + 1)]
        self._out_dir = out_dir
        self._shard_size = shard_size
        self._index = -1
        self._room = 0
        self._file: Any = None

    def write(self, data: Any) -> None:
        try:
            self._write(data)
        except OSError as e:  # disk full, permissions, a vanished directory: not a bug
            name = self.paths[max(self._index, 0)]
            raise ConversionError(f"cannot write weight shard {name}: {e.strerror or e}") from None

    def _write(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if self._room == 0:
                self._next()
            n = min(self._room, len(view))
            self._file.write(view[:n])
            view = view[n:]
            self._room -= n

    def _next(self) -> None:
        self.close()
        self._index += 1
        if self._index >= len(self.paths):
            raise AssertionError("weight bytes exceed the precomputed shard count")
        self._file = open(os.path.join(self._out_dir, self.paths[self._index]), "wb")
        self._room = self._shard_size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _check_groups(groups: Any) -> list[list[tuple[str, Any]]]:
    checked = []
    seen: dict[str, int] = {}
    for g, group in enumerate(groups):
        entries = []
        for entry in group:
            try:
                name, array = entry
            except (TypeError, ValueError):
                raise ConversionError(f"weight group {g + 1}: entries must be (name, array) pairs") from None
            if not isinstance(name, str) or not name:
                raise ConversionError(f"weight group {g + 1}: weight name {name!r} is not a non-empty string")
            if name in seen:
                raise ConversionError(f"duplicate weight name {name} (in groups {seen[name]} and {g + 1})")
            seen[name] = g + 1
            entries.append((name, array if _is_lazy(array) else np.asarray(array)))
        checked.append(entries)
    return checked


def write_weights(
    groups: Sequence[WeightList],
    out_dir: str,
    *,
    shard_size_bytes: int = DEFAULT_SHARD_SIZE_BYTES,
    quantization: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write the weight shards of ``groups`` into ``out_dir``; return the ``weightsManifest``.

    ``quantization`` is ``{'float16'|'uint8'|'uint16': True | (patterns...)}``; only weights
    that are float32 after auto-conversion are quantized.
    """
    if (
        isinstance(shard_size_bytes, bool)
        or not isinstance(shard_size_bytes, (int, np.integer))
        or shard_size_bytes <= 0
    ):
        raise ConversionError(f"weight shard size must be a positive integer, got {shard_size_bytes!r}")
    shard_size = int(shard_size_bytes)
    checked = _check_groups(groups)
    dtypes = {name: _manifest_dtype(name, array) for group in checked for name, array in group}
    all_names = [name for group in checked for name, _ in group]
    quant_of = quant.resolve_quantization(all_names, quantization or {})

    manifest: list[dict[str, Any]] = []
    for g, group in enumerate(checked, start=1):
        # Pass 1: byte sizes (strings are encoded once here and kept, they are small).
        sizes = []
        strings: dict[str, list[bytes]] = {}
        for name, array in group:
            dtype = dtypes[name]
            if dtype == "string":
                strings[name] = _string_elements(name, array)
                sizes.append(sum(4 + len(s) for s in strings[name]))
            elif dtype == "float32" and name in quant_of:
                sizes.append(array.size * _QUANT_ITEMSIZE[quant_of[name]])
            else:
                sizes.append(array.size * _ITEMSIZE[dtype])
        total = sum(sizes)
        num_shards = math.ceil(total / shard_size)
        writer = _ShardWriter(out_dir, g, num_shards, shard_size)
        entries = []
        try:
            for name, array in group:
                dtype = dtypes[name]
                entry: dict[str, Any] = {
                    "name": name,
                    "shape": [int(d) for d in array.shape],
                    "dtype": dtype,
                }
                if dtype == "string":
                    for chunk in _string_bytes(strings.pop(name)):
                        writer.write(chunk)
                else:
                    data = _converted(name, array.read() if _is_lazy(array) else array, dtype)
                    if dtype == "float32" and name in quant_of:
                        stored, meta = quant.quantize(data, quant_of[name], name=name)
                        data = np.ascontiguousarray(stored, dtype=_QUANT_STORAGE[meta["dtype"]])
                        entry["quantization"] = meta
                    if data.size:
                        writer.write(data.reshape(-1).view(np.uint8))
                    del data
                entries.append(entry)
        finally:
            writer.close()
        manifest.append({"paths": writer.paths, "weights": entries})
    return manifest
