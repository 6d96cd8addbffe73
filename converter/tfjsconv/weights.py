"""Writing and reading TensorFlow.js binary weight shards and the ``weightsManifest``.

Format (what tfjs-core ``io.decodeWeights`` expects, and what the reference writes):

* every group's weights are concatenated in order, then cut into ``shard_size_bytes``
  chunks named ``group{g}-shard{i}of{n}.bin`` (1-based); a weight may straddle shards and
  an empty group gets ``paths: []``;
* numeric values are little-endian, C order (explicit ``<`` dtypes: the bytes must not
  depend on the machine); bool is one byte; complex64 is interleaved (re, im);
* a string element is a uint32 little-endian byte length followed by its UTF-8 bytes.

The writer streams one weight at a time into the shard files, so converting a model never
needs a second in-memory copy of all its weights.  A weight may also be a ``LazyArray``
(``shape``, ``dtype``, ``size`` and ``read()``): it is read when it is written and
dropped after, so only one such weight is in memory at a time.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from tfjsconv import quantization as quant
from tfjsconv.errors import ConversionError
from tfjsconv.formats import DEFAULT_SHARD_SIZE_BYTES as DEFAULT_SHARD_SIZE_BYTES

_log = logging.getLogger(__name__)

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


class LazyArray(Protocol):
    """A weight whose values are read only when it is written."""

    shape: Tuple[int, ...]
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


WeightList = Sequence[Tuple[str, Union[np.ndarray, LazyArray]]]


# ----------------------------------------------------------------------------- writing


def _manifest_dtype(name: str, array: np.ndarray) -> str:
    """The tfjs dtype a weight is stored as (after the reference's auto-conversions)."""
    dt = array.dtype
    kind, size = dt.kind, dt.itemsize  # byte-order independent
    if kind == "f" and size in (2, 4, 8):
        return "float32"  # float16/float64 are auto-converted like the reference
    if kind in "iu" and size <= 8:
        # int64 like the reference; the narrower/unsigned ints tfjs has no dtype for.
        return "int32"
    if kind == "b":
        return "bool"
    if kind == "c" and size in (8, 16):
        return "complex64"
    if kind in "USO":
        return "string"
    raise ConversionError(f"weight {name} has dtype {dt}, which TensorFlow.js cannot store")


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


def _string_elements(name: str, array: np.ndarray) -> List[bytes]:
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


def _check_groups(groups: Any) -> List[List[Tuple[str, Any]]]:
    checked = []
    seen: Dict[str, int] = {}
    for g, group in enumerate(groups):
        entries = []
        for entry in group:
            try:
                name, array = entry
            except (TypeError, ValueError):
                raise ConversionError(f"weight group {g + 1}: entries must be (name, array) pairs")
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
    quantization: Optional[Mapping[str, Any]] = None,
) -> List[Dict[str, Any]]:
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

    manifest: List[Dict[str, Any]] = []
    for g, group in enumerate(checked, start=1):
        # Pass 1: byte sizes (strings are encoded once here and kept, they are small).
        sizes = []
        strings: Dict[str, List[bytes]] = {}
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
                entry: Dict[str, Any] = {
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


# ----------------------------------------------------------------------------- reading


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


def _validate_weight(entry: Any, group: int) -> Tuple[str, Tuple[int, ...], str, Optional[Dict[str, Any]]]:
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


def _read_group_bytes(paths: List[str], expected_min: int, group: int) -> bytearray:
    try:
        return _read_files(paths, expected_min, group)
    except OSError as e:
        raise ConversionError(
            f"weights manifest group {group}: cannot read shard: {e.strerror or e}"
        ) from None


def _read_files(paths: List[str], expected_min: int, group: int) -> bytearray:
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
) -> Tuple[np.ndarray, int]:
    where = f"weights manifest group {group}"
    if count * 4 > len(data) - offset:
        raise ConversionError(f"{where}: shard bytes too short for string weight {name!r}")
    items: List[Any] = []
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
        shards: Sequence[Tuple[str, int]],
        offset: int,
        count: int,
        shape: Tuple[int, ...],
        dtype: str,
        meta: Optional[Dict[str, Any]],
        name: str,
    ):
        # ``shards``: (path, size) of the group's shard files, sized once per group when
        # the manifest was checked against them (not once per weight).
        self._shards, self._offset, self._count, self._meta, self.name = shards, offset, count, meta, name
        self.shape = shape
        self._storage = _QUANT_STORAGE[meta["dtype"]] if meta else _STORAGE[dtype]
        self._dtype_name = dtype
        self.dtype: "np.dtype[Any]"
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


def _checked_groups(
    manifest: Any, model_dir: str, follow_symlinks: bool
) -> Iterator[
    Tuple[int, Dict[str, Any], List[Tuple[str, Tuple[int, ...], str, Optional[Dict[str, Any]]]], List[str]]
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
) -> List[Tuple[str, Any]]:
    """``read_weights`` with the same checks, but each numeric weight is a ``ShardWeight``
    read when it is written: re-sharding a model holds one weight at a time.

    Groups holding string weights (their sizes are only known by decoding) are read
    eagerly.
    """
    result: List[Tuple[str, Any]] = []
    for g, group, specs, paths in _checked_groups(manifest, model_dir, follow_symlinks):
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
) -> List[Tuple[str, np.ndarray]]:
    """Read (and dequantize) every weight of ``manifest``; shard paths are relative to ``model_dir``.

    Every inconsistency (bad manifest, paths escaping ``model_dir``, shard byte counts that
    don't match the declared shapes) is a ``ConversionError``; sizes are checked before any
    large allocation.
    """
    result: List[Tuple[str, np.ndarray]] = []
    for g, group, specs, paths in _checked_groups(manifest, model_dir, follow_symlinks):
        fixed = 0
        for name, shape, dtype, meta in specs:
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
