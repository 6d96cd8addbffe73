"""Reading Keras HDF5 weights with h5py: size checks before reading, string attributes,
and large datasets left in the file (``H5Weight``) until the writer reads them."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.layers.keras_zip import ZipMemberWindow, stored_member


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _json_attr(attrs: Any, key: str, path: str) -> dict[str, Any] | None:
    if key not in attrs:
        return None
    try:
        return json.loads(_text(attrs[key]))
    except ValueError as e:
        raise ConversionError(f"{path}: attribute {key!r} is not valid JSON ({e})") from None


def _names(attrs: Any, key: str) -> list[str]:
    if key not in attrs:
        return []
    return [_text(v) for v in np.asarray(attrs[key]).reshape(-1)]


def _strip_suffix(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _read_dataset(ds: Any, name: str, path: str) -> np.ndarray:
    try:
        return np.asarray(ds[()])
    except Exception as e:  # noqa: BLE001 - h5py raises many types for corrupt data
        raise ConversionError(f"{path}: cannot read weight {name!r}: {e}") from None


# Datasets at least this large are read when written (``H5Weight``), smaller ones now.
LAZY_MIN_BYTES = 1 << 16


class LazyH5File:
    """The h5 file (or stored ``.keras`` member) that a model's ``H5Weight``s read from.

    The reader size-checked the whole file (``check_h5_sizes``) when it opened it. Lazy
    reads share one handle, opened on the first read and kept until ``close`` (or
    collection), and check only the dataset they read: its declared shape and dtype must
    be the ones seen then, so each read allocates what the file check allowed. A
    conversion visits the file's objects once, whatever the number of weights.
    """

    def __init__(self, path: str, member: str | None = None):
        # ``member``: the h5 file is this stored member of the zip ``path`` (a .keras file).
        self.path, self.member = path, member
        self._file: Any = None
        self._window: ZipMemberWindow | None = None

    def _open(self) -> Any:
        if self._file is not None:
            return self._file
        import h5py

        source: Any = self.path
        if self.member is not None:
            self._window = stored_member(self.path, self.member)
            if self._window is None:
                raise ConversionError(f"{self.path}: {self.member} changed while converting")
            source = self._window
        try:
            self._file = h5py.File(source, "r")
        except OSError as e:
            self.close()
            raise ConversionError(f"{self.path}: cannot reopen the weights while converting ({e})") from None
        return self._file

    def read(self, dataset: str, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        ds = self._open().get(dataset)
        if ds is None or not hasattr(ds, "dtype") or tuple(ds.shape) != shape or ds.dtype != dtype:
            raise ConversionError(f"{self.path}: weight {name!r} changed while converting")
        return _read_dataset(ds, name, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._window is not None:
            self._window.close()
            self._window = None

    def __del__(self) -> None:
        self.close()


class H5Weight:
    """An h5 dataset read only when the weight writer asks (``weights.LazyArray``):
    converting an h5 to a layers model holds one weight at a time."""

    def __init__(self, source: LazyH5File, dataset: str, name: str, shape: tuple[int, ...], dtype: np.dtype):
        self._source, self._dataset, self._name = source, dataset, name
        self.shape, self.dtype = shape, dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def read(self) -> np.ndarray:
        value = self._source.read(self._dataset, self._name, self.shape, self.dtype)
        if value.shape != self.shape or value.dtype != self.dtype:
            raise ConversionError(f"{self._source.path}: weight {self._name!r} changed while converting")
        return value


def _dataset(ds: Any, name: str, path: str, lazy: LazyH5File | None) -> Any:
    """The dataset's value now, or (``lazy`` given, large and numeric) an ``H5Weight``
    read from ``lazy`` when written."""
    dtype = getattr(ds, "dtype", None)
    shape = getattr(ds, "shape", None)
    if (
        lazy is not None
        and isinstance(dtype, np.dtype)
        and dtype.kind in "fiucb"
        and shape is not None
        and int(np.prod(shape, dtype=np.int64)) * dtype.itemsize >= LAZY_MIN_BYTES
    ):
        return H5Weight(lazy, ds.name, name, tuple(int(d) for d in shape), dtype)
    return _read_dataset(ds, name, path)


def _h5_layer_weights(
    group: Any, layer: str, path: str, lazy: LazyH5File | None = None
) -> list[tuple[str, Any]]:
    """One layer group's weights in its ``weight_names`` order, names without ``:0``;
    ``lazy``: large numeric ones as ``H5Weight``s."""
    out = []
    for wname in _names(group.attrs, "weight_names"):
        if wname not in group:
            raise ConversionError(f"{path}: layer {layer!r} lists weight {wname!r} but it is missing")
        out.append((_strip_suffix(wname), _dataset(group[wname], wname, path, lazy)))
    return out


def _order_layers(config_names: Sequence[str], stored: Sequence[str]) -> list[str]:
    """Config order first, then stored layers the config does not mention."""
    stored_set = set(stored)
    ordered = [n for n in config_names if n in stored_set]
    seen = set(ordered)
    return ordered + [n for n in stored if n not in seen]


def check_h5_sizes(f: Any, file_bytes: int, path: str) -> None:
    """Refuse datasets whose declared shapes need more bytes than the file holds.

    Keras writes weights uncompressed, so a real model's arrays fit in its file; a
    chunked or compressed dataset can declare terabytes (read as fill values), and
    reading it would allocate them all. The walk uses h5py's low-level API (object
    info, dataset ids): building a high-level object per item cost 3x as much.
    """
    import h5py

    declared = 0
    over: list[str] = []

    def visit(name: bytes, info: Any) -> None:
        nonlocal declared
        if info.type != h5py.h5o.TYPE_DATASET:
            return
        dataset = h5py.h5d.open(f.id, name)
        shape = dataset.shape
        if shape is None:  # an empty (null) dataspace holds nothing
            return
        count = 1
        for dim in shape:
            count *= int(dim)
        declared += count * max(int(dataset.get_type().get_size()), 1)
        if declared > file_bytes and not over:
            over.append(name.decode("utf-8", "replace"))

    try:
        h5py.h5o.visit(f.id, visit, info=True)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises many types for corrupt files
        raise ConversionError(f"not a readable HDF5 file: {path} ({type(e).__name__}: {e})") from None
    if over:
        raise ConversionError(
            f"{path}: datasets declare more bytes than the file holds ({file_bytes} bytes; "
            f"first over the limit: {over[0]!r}); refusing to read them"
        )


def _open_h5(source: Any, path: str) -> Any:
    import h5py

    try:
        f = h5py.File(source, "r")
    except OSError as e:
        raise ConversionError(f"not a readable HDF5 file: {path} ({e})") from None
    if isinstance(source, io.BytesIO):
        size = source.getbuffer().nbytes
    elif isinstance(source, ZipMemberWindow):
        size = source.size
    else:
        size = os.path.getsize(source)
    try:
        check_h5_sizes(f, size, path)
    except BaseException:
        f.close()
        raise
    return f
