"""Reading TensorFlow.js weight shards back (format: ``tfjsconv.weights``): every path
and manifest entry of an untrusted model checked before a byte is read; eager or lazy
(``ShardWeight``, read when needed)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfjsconv import quantization as quant
from tfjsconv.errors import ConversionError
from tfjsconv.formats import DEFAULT_SHARD_SIZE_BYTES as DEFAULT_SHARD_SIZE_BYTES
from tfjsconv.weight_format import _ITEMSIZE, _QUANT_ITEMSIZE, _QUANT_STORAGE, _STORAGE


def _safe_shard_path(model_dir: str, rel: Any, group: int, follow_symlinks: bool = False) -> str:
    """Resolve a manifest path, refusing anything that could escape the model directory.

    ``follow_symlinks``: containment is checked on the path as written, so a shard that
    is a symlink out of the directory (a build sandbox's staged input) is accepted.
    """
    if not isinstance(rel, str) or not rel:
        raise ConversionError(f"weights manifest group {group}: shard path {rel!r} is not a file name")
    parts = rel.replace("\\", "/").split("/")
    if (
        rel.startswith(("/", "\\"))
        or os.path.isabs(rel)
        or (len(rel) > 1 and rel[1] == ":")
        or ".." in parts
        or "\x00" in rel
    ):
        raise ConversionError(
            f"weights manifest group {group}: shard path {rel!r} points outside the model directory"
        )
    try:
        resolve = os.path.abspath if follow_symlinks else os.path.realpath
        root = resolve(model_dir)
        full = resolve(os.path.join(root, *[p for p in parts if p not in ("", ".")]))
        inside = os.path.commonpath([root, full]) == root
        is_file = inside and os.path.isfile(full)
    except (OSError, ValueError):  # undecodable names, too-long paths, symlink loops
        raise ConversionError(
            f"weights manifest group {group}: shard path {rel!r} is not a usable file name"
        ) from None
    if not inside:
        raise ConversionError(
            f"weights manifest group {group}: shard path {rel!r} resolves outside the model directory"
        )
    if not is_file:
        raise ConversionError(f"weights manifest group {group}: shard file {rel!r} is missing")
    return full


def _validate_weight(entry: Any, group: int) -> tuple[str, tuple[int, ...], str, dict[str, Any] | None]:
    where = f"weights manifest group {group}"
    if not isinstance(entry, dict):
        raise ConversionError(f"{where}: a weight entry is not an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}: a weight entry has no valid name")
    # repr: a name from a manifest may hold a newline, and the error stays one line.
    what = f"{where}: weight {name!r}"
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ConversionError(f"{what} has an invalid shape {shape!r}")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or (dtype not in _ITEMSIZE and dtype != "string"):
        raise ConversionError(f"{what} has unsupported dtype {dtype!r}")
    q = entry.get("quantization")
    if q is None:
        return name, tuple(shape), dtype, None
    if not isinstance(q, dict) or not isinstance(q.get("dtype"), str) or q["dtype"] not in _QUANT_ITEMSIZE:
        raise ConversionError(f"{what} has an invalid quantization entry")
    # tfjs decodes by the weight's own dtype; original_dtype (absent in legacy manifests)
    # must agree with it when present.
    original = q.get("original_dtype", dtype)
    if dtype not in ("float32", "int32") or original != dtype:
        raise ConversionError(f"{what} of dtype {dtype} cannot be quantized (original_dtype {original!r})")
    if q["dtype"] == "float16" and dtype != "float32":
        raise ConversionError(f"{what}: float16 quantization needs a float32 weight")
    meta = {"dtype": q["dtype"], "original_dtype": original}
    if q["dtype"] in ("uint8", "uint16"):
        for key in ("min", "scale"):
            value = q.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConversionError(f"{what} has an invalid quantization {key}")
            meta[key] = float(value)
    return name, tuple(shape), dtype, meta


def _read_group_bytes(paths: list[str], expected_min: int, group: int) -> bytearray:
    try:
        return _read_files(paths, expected_min, group)
    except OSError as e:
        raise ConversionError(
            f"weights manifest group {group}: cannot read shard: {e.strerror or e}"
        ) from None


def _read_files(paths: list[str], expected_min: int, group: int) -> bytearray:
    total = sum(os.path.getsize(p) for p in paths)
    if total < expected_min:
        raise ConversionError(
            f"weights manifest group {group}: shards hold {total} bytes but the manifest "
            f"declares at least {expected_min} (truncated or missing shard?)"
        )
    buf = bytearray(total)
    view = memoryview(buf)
    offset = 0
    for path in paths:
        with open(path, "rb") as f:
            while offset < total:
                n = f.readinto(view[offset:])
                if not n:
                    break
                offset += n
    if offset != total:
        raise ConversionError(f"weights manifest group {group}: a shard changed while reading")
    return buf


def _decode_strings(
    data: bytearray, offset: int, count: int, name: str, group: int
) -> tuple[np.ndarray, int]:
    where = f"weights manifest group {group}"
    if count * 4 > len(data) - offset:
        raise ConversionError(f"{where}: shard bytes too short for string weight {name!r}")
    items: list[Any] = []
    for _ in range(count):
        if offset + 4 > len(data):
            raise ConversionError(f"{where}: shard bytes too short for string weight {name!r}")
        length = int.from_bytes(data[offset : offset + 4], "little")
        offset += 4
        if offset + length > len(data):
            raise ConversionError(f"{where}: shard bytes too short for string weight {name!r}")
        raw = bytes(data[offset : offset + length])
        offset += length
        try:
            items.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            items.append(raw)
    out = np.empty(count, dtype=object)
    out[:] = items
    return out, offset


class ShardWeight:
    """One weight of a converted model, read from its shards (and decoded like
    ``read_weights``) only when ``read()`` is called: a ``LazyArray`` for the writer."""

    def __init__(
        self,
        shards: Sequence[tuple[str, int]],
        offset: int,
        count: int,
        shape: tuple[int, ...],
        dtype: str,
        meta: dict[str, Any] | None,
        name: str,
    ):
        # ``shards``: (path, size) of the group's shard files, sized once per group when
        # the manifest was checked against them (not once per weight).
        self._shards, self._offset, self._count, self._meta, self.name = shards, offset, count, meta, name
        self.shape = shape
        self._storage = _QUANT_STORAGE[meta["dtype"]] if meta else _STORAGE[dtype]
        self._dtype_name = dtype
        self.dtype: np.dtype[Any]
        if meta is not None:
            self.dtype = np.dtype(np.int32 if meta["original_dtype"] == "int32" else np.float32)
        else:
            self.dtype = np.dtype(bool) if dtype == "bool" else np.dtype(_STORAGE[dtype]).newbyteorder("=")

    @property
    def size(self) -> int:
        return self._count

    def read(self) -> np.ndarray:
        nbytes = self._count * np.dtype(self._storage).itemsize
        buf = bytearray(nbytes)
        view = memoryview(buf)
        skip, filled = self._offset, 0
        try:
            for path, size in self._shards:
                if skip >= size:
                    skip -= size
                    continue
                with open(path, "rb") as f:
                    f.seek(skip)
                    skip = 0
                    while filled < nbytes:
                        n = f.readinto(view[filled:])
                        if not n:
                            break
                        filled += n
                if filled == nbytes:
                    break
        except OSError as e:
            raise ConversionError(
                f"cannot read the shards of weight {self.name}: {e.strerror or e}"
            ) from None
        if filled != nbytes:
            raise ConversionError(f"weight {self.name}: a shard changed while reading")
        stored = np.frombuffer(buf, dtype=self._storage).reshape(self.shape)
        if self._meta is not None:
            return quant.dequantize(stored, self._meta)
        if self._dtype_name == "bool":
            return stored != 0
        if stored.dtype.isnative:
            return stored
        return stored.astype(stored.dtype.newbyteorder("="), copy=True)


def checked_groups(
    manifest: Any, model_dir: str, follow_symlinks: bool
) -> Iterator[
    tuple[int, dict[str, Any], list[tuple[str, tuple[int, ...], str, dict[str, Any] | None]], list[str]]
]:
    """(group number, group, validated weight specs, safe shard paths) of each manifest
    group; a malformed group, a duplicate weight name or an escaping path is an error."""
    if not isinstance(manifest, list):
        raise ConversionError("weightsManifest must be a list of weight groups")
    seen = set()
    for g, group in enumerate(manifest, start=1):
        if (
            not isinstance(group, dict)
            or not isinstance(group.get("paths"), list)
            or not isinstance(group.get("weights"), list)
        ):
            raise ConversionError(
                f"weights manifest group {g} must be an object with 'paths' and 'weights' lists"
            )
        specs = [_validate_weight(w, g) for w in group["weights"]]
        for name, *_ in specs:
            if name in seen:
                raise ConversionError(f"weights manifest: duplicate weight name {name}")
            seen.add(name)
        yield g, group, specs, [_safe_shard_path(model_dir, p, g, follow_symlinks) for p in group["paths"]]


def read_weights_lazily(
    manifest: Any, model_dir: str, follow_symlinks: bool = False
) -> list[tuple[str, Any]]:
    """``read_weights`` with the same checks, but each numeric weight is a ``ShardWeight``
    read when it is written: re-sharding a model holds one weight at a time.

    Groups holding string weights (their sizes are only known by decoding) are read
    eagerly.
    """
    result: list[tuple[str, Any]] = []
    for g, group, specs, paths in checked_groups(manifest, model_dir, follow_symlinks):
        if any(dtype == "string" for _, _, dtype, _ in specs):
            result.extend(
                read_weights([group], model_dir, follow_symlinks)
                if g == 1
                else read_weights(
                    [{"paths": [], "weights": []}] * (g - 1) + [group], model_dir, follow_symlinks
                )
            )
            continue
        try:
            shards = [(p, os.path.getsize(p)) for p in paths]
        except OSError as e:
            raise ConversionError(
                f"weights manifest group {g}: cannot read shard: {e.strerror or e}"
            ) from None
        total = sum(size for _, size in shards)
        offset = 0
        entries = []
        for name, shape, dtype, meta in specs:
            count = math.prod(shape)
            entries.append(ShardWeight(shards, offset, count, shape, dtype, meta, name))
            offset += count * (_QUANT_ITEMSIZE[meta["dtype"]] if meta else _ITEMSIZE[dtype])
        if total < offset:
            raise ConversionError(
                f"weights manifest group {g}: shards hold {total} bytes but the manifest "
                f"declares at least {offset} (truncated or missing shard?)"
            )
        if total != offset:
            raise ConversionError(
                f"weights manifest group {g}: shards hold {total} bytes but the weights "
                f"use {offset} (shard too long or manifest out of date)"
            )
        result.extend((entry.name, entry) for entry in entries)
    return result


def read_weights(
    manifest: Any, model_dir: str, follow_symlinks: bool = False
) -> list[tuple[str, np.ndarray]]:
    """Read (and dequantize) every weight of ``manifest``; shard paths are relative to ``model_dir``.

    Every inconsistency (bad manifest, paths escaping ``model_dir``, shard byte counts that
    don't match the declared shapes) is a ``ConversionError``; sizes are checked before any
    large allocation.
    """
    result: list[tuple[str, np.ndarray]] = []
    for g, _group, specs, paths in checked_groups(manifest, model_dir, follow_symlinks):
        fixed = 0
        for _name, shape, dtype, meta in specs:
            count = math.prod(shape)
            if dtype == "string":
                fixed += 4 * count
            elif meta is not None:
                fixed += count * _QUANT_ITEMSIZE[meta["dtype"]]
            else:
                fixed += count * _ITEMSIZE[dtype]
        data = _read_group_bytes(paths, fixed, g)
        offset = 0
        for name, shape, dtype, meta in specs:
            count = math.prod(shape)
            if dtype == "string":
                values, offset = _decode_strings(data, offset, count, name, g)
                result.append((name, values.reshape(shape)))
                continue
            storage = _QUANT_STORAGE[meta["dtype"]] if meta else _STORAGE[dtype]
            nbytes = count * np.dtype(storage).itemsize
            if offset + nbytes > len(data):
                raise ConversionError(f"weights manifest group {g}: shard bytes too short for weight {name}")
            stored = np.frombuffer(data, dtype=storage, count=count, offset=offset).reshape(shape)
            offset += nbytes
            if meta is not None:
                values = quant.dequantize(stored, meta)
            elif dtype == "bool":
                values = stored != 0
            elif stored.dtype.isnative and stored.flags.aligned:
                values = stored  # a view into the group buffer: no second copy of the model
            else:
                values = stored.astype(stored.dtype.newbyteorder("="), copy=True)
            result.append((name, values))
        if offset != len(data):
            raise ConversionError(
                f"weights manifest group {g}: shards hold {len(data)} bytes but the weights "
                f"use {offset} (shard too long or manifest out of date)"
            )
    return result
