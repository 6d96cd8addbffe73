"""Read Keras model files (HDF5 and ``.keras`` zips) with h5py and numpy only.

The result is a ``KerasModel``: the topology as Keras wrote it plus the weights
grouped per layer in **model order** (the order layers appear in the model config,
then each layer's own weight order). The reference converter uses h5py's alphabetical
group order instead; model order keeps related weights together and does not depend
on how layers happen to be named. tfjs looks weights up by name, so either loads.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.layers import keras3, weight_names

# (weight name, array) pairs of one layer.
LayerWeights = Tuple[str, List[Tuple[str, np.ndarray]]]

_ZIP_MAX_MEMBER_BYTES = 4 * 1024**3
# Deflate cannot beat ~1032:1; weights (random floats) compress far less. An entry
# claiming more than this ratio over a few MB is a zip bomb, not a model.
_ZIP_MAX_RATIO = 200
_ZIP_RATIO_FLOOR_BYTES = 64 * 1024**2


@dataclasses.dataclass(frozen=True)
class KerasModel:
    """What a layers model.json needs, independent of the input file format."""

    keras_version: Optional[str]
    backend: Optional[str]
    model_config: Optional[Dict[str, Any]]  # None for weights-only files
    training_config: Optional[Dict[str, Any]]
    layers: List[LayerWeights]  # model order; layers without weights omitted


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _json_attr(attrs: Any, key: str, path: str) -> Optional[Dict[str, Any]]:
    if key not in attrs:
        return None
    try:
        return json.loads(_text(attrs[key]))
    except ValueError as e:
        raise ConversionError(f"{path}: attribute {key!r} is not valid JSON ({e})") from None


def _names(attrs: Any, key: str) -> List[str]:
    if key not in attrs:
        return []
    return [_text(v) for v in np.asarray(attrs[key]).reshape(-1)]


def _strip_suffix(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


_TRANSLATED_CLASSES = {
    "BatchNormalizationV1": "BatchNormalization",
    "UnifiedGRU": "GRU",
    "UnifiedLSTM": "LSTM",
}


def translate_class_names(value: Any) -> Any:
    """Rename TF-internal layer class aliases to the names tfjs registers."""
    if isinstance(value, list):
        return [translate_class_names(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "class_name" and isinstance(v, str):
                out[k] = _TRANSLATED_CLASSES.get(v, v)
            else:
                out[k] = translate_class_names(v)
        return out
    return value


def check_safe_keras2(model_config: Mapping[str, Any], allow_unsafe: bool) -> None:
    """Refuse Lambda layers and custom objects in a Keras 2 config (never run code)."""
    if allow_unsafe:
        return

    def walk(value: Any, where: str) -> None:
        if isinstance(value, list):
            for v in value:
                walk(v, where)
        elif isinstance(value, dict):
            if "class_name" in value and "config" in value:
                cfg = value.get("config")
                name = cfg.get("name") if isinstance(cfg, dict) else None
                where = f"layer {name!r}" if name else where
                keras3.check_safe(value, where, allow_unsafe)
            for v in value.values():
                walk(v, where)

    walk(model_config, "model")


def _read_dataset(ds: Any, name: str, path: str) -> np.ndarray:
    try:
        return np.asarray(ds[()])
    except Exception as e:  # noqa: BLE001 - h5py raises many types for corrupt data
        raise ConversionError(f"{path}: cannot read weight {name!r}: {e}") from None


# The weights member of a Keras 3 ``.keras`` zip.
KERAS3_WEIGHTS = "model.weights.h5"

# Datasets at least this large are read when written (``H5Weight``), smaller ones now.
LAZY_MIN_BYTES = 1 << 16

_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... name length, extra length


class ZipMemberWindow(io.RawIOBase):
    """A read-only, seekable view of a stored (uncompressed) zip member, read in place:
    h5py opens a ``.keras`` file's weights through it without a copy in memory or on
    disk (Keras stores its members uncompressed)."""

    def __init__(self, path: str, start: int, size: int):
        super().__init__()
        self.size = size
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start, self._pos = start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self._pos))
        if not n:
            return 0
        self._file.seek(self._start + self._pos)
        got = self._file.readinto(memoryview(buffer)[:n]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def stored_member(path: str, name: str) -> Optional[ZipMemberWindow]:
    """A window onto member ``name`` of the zip ``path`` if it is stored uncompressed,
    else None.  A local header that disagrees with the central directory is an error."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(_ZIP_LOCAL_HEADER.size)
        end = f.seek(0, io.SEEK_END)
    if len(header) != _ZIP_LOCAL_HEADER.size:
        raise ConversionError(f"{path}: zip entry {name!r} has a truncated header")
    signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(header)
    start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
    if signature != b"PK\x03\x04" or start + info.file_size > end:
        raise ConversionError(f"{path}: zip entry {name!r} lies outside the file")
    return ZipMemberWindow(path, start, info.file_size)


class LazyH5File:
    """The h5 file (or stored ``.keras`` member) that a model's ``H5Weight``s read from.

    The reader size-checked the whole file (``check_h5_sizes``) when it opened it. Lazy
    reads share one handle, opened on the first read and kept until ``close`` (or
    collection), and check only the dataset they read: its declared shape and dtype must
    be the ones seen then, so each read allocates what the file check allowed. A
    conversion visits the file's objects once, whatever the number of weights.
    """

    def __init__(self, path: str, member: Optional[str] = None):
        # ``member``: the h5 file is this stored member of the zip ``path`` (a .keras file).
        self.path, self.member = path, member
        self._file: Any = None
        self._window: Optional[ZipMemberWindow] = None

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

    def read(self, dataset: str, name: str, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
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

    def __init__(self, source: LazyH5File, dataset: str, name: str, shape: Tuple[int, ...], dtype: np.dtype):
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


def _dataset(ds: Any, name: str, path: str, lazy: Optional[LazyH5File]) -> Any:
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
    group: Any, layer: str, path: str, lazy: Optional[LazyH5File] = None
) -> List[Tuple[str, Any]]:
    """One layer group's weights in its ``weight_names`` order, names without ``:0``;
    ``lazy``: large numeric ones as ``H5Weight``s."""
    out = []
    for wname in _names(group.attrs, "weight_names"):
        if wname not in group:
            raise ConversionError(f"{path}: layer {layer!r} lists weight {wname!r} but it is missing")
        out.append((_strip_suffix(wname), _dataset(group[wname], wname, path, lazy)))
    return out


def _order_layers(config_names: Sequence[str], stored: Sequence[str]) -> List[str]:
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
    over: List[str] = []

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


def read_h5(path: str, allow_unsafe: bool = False, lazy: bool = False) -> KerasModel:
    """A Keras 2 or Keras 3 ``model.save('x.h5')`` file, or a weights-only h5; ``lazy``:
    large weights are ``H5Weight``s, read when written."""
    source = LazyH5File(path) if lazy else None
    with _open_h5(path, path) as f:
        if "layer_names" in f.attrs:  # weights-only file (model.save_weights)
            layers = [
                (name, _h5_layer_weights(f[name], name, path, source))
                for name in _names(f.attrs, "layer_names")
            ]
            return KerasModel(None, None, None, None, [layer for layer in layers if layer[1]])
        model_config = _json_attr(f.attrs, "model_config", path)
        if model_config is None or "model_weights" not in f:
            raise ConversionError(
                f"{path}: not a Keras model file (no 'model_config' attribute / 'model_weights' group)"
            )
        keras_version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
        backend = _text(f.attrs["backend"]) if "backend" in f.attrs else None
        training_config = _json_attr(f.attrs, "training_config", path)
        weights = f["model_weights"]
        stored = _names(weights.attrs, "layer_names")
        if "top_level_model_weights" in weights:
            stored.append("top_level_model_weights")
        config_names = [n for n, _, _ in keras3.layer_configs(model_config)]
        order = _order_layers(config_names, stored)
        raw = [(n, _h5_layer_weights(weights[n], n, path, source)) for n in order if n in weights]

    if keras3.is_keras3_version(keras_version):
        config = keras3.translate_model(model_config, allow_unsafe)
        # Weight names follow the *translated* (Keras 2) config, e.g. Bidirectional's
        # wrapped-layer name.
        classes = {n: (c, cfg) for n, c, cfg in keras3.layer_configs(config)}
        layers = []
        for name, ws in raw:
            if not ws:
                continue
            cls, cfg = classes.get(name, ("<not in config>", {}))
            names = keras3.keras2_weight_names(name, cls, cfg, len(ws))
            layers.append((name, [(n, a) for n, (_, a) in zip(names, ws)]))
        # A Keras 3 training_config is Keras 3 style too; tfjs would try to compile it.
        return KerasModel(keras_version, backend, config, None, layers)

    check_safe_keras2(model_config, allow_unsafe)
    config = translate_class_names(model_config)
    classes = {n: (c, cfg) for n, c, cfg in keras3.layer_configs(config)}
    layers = []
    for name, ws in raw:
        if not ws:
            continue
        cls, cfg = classes.get(name, ("<not in config>", {}))
        names = weight_names.tfjs_weight_names(name, cls, cfg, [n for n, _ in ws])
        layers.append((name, [(n, a) for n, (_, a) in zip(names, ws)]))
    return KerasModel(keras_version, backend, config, training_config, layers)


def _safe_member(name: str, path: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise ConversionError(f"{path}: refusing unsafe zip entry name {name!r}")


def _check_zip_entry(info: zipfile.ZipInfo, path: str) -> None:
    """Refuse entries whose declared size is too large or compressed like a bomb.

    ``zipfile`` never returns more than the declared size, so checking it bounds memory.
    """
    if info.file_size > _ZIP_MAX_MEMBER_BYTES:
        raise ConversionError(f"{path}: zip entry {info.filename!r} is too large ({info.file_size} bytes)")
    if info.file_size > _ZIP_RATIO_FLOOR_BYTES and info.file_size > _ZIP_MAX_RATIO * max(
        info.compress_size, 1
    ):
        raise ConversionError(
            f"{path}: zip entry {info.filename!r} expands {info.compress_size} bytes to {info.file_size} "
            "(a zip bomb?); refusing to read it"
        )


def check_keras_file(path: str) -> None:
    """The size checks of ``read_keras_file`` without reading the weights, for callers
    that hand the file to Keras itself (the graph-model path)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    _safe_member(info.filename, path)
                    _check_zip_entry(info, path)
                weights = zf.getinfo(KERAS3_WEIGHTS) if KERAS3_WEIGHTS in zf.namelist() else None
                window = stored_member(path, weights.filename) if weights is not None else None
                # A compressed member (not what Keras writes) is checked from memory.
                data = zf.read(weights) if weights is not None and window is None else None
        except (zipfile.BadZipFile, OSError) as e:
            raise ConversionError(f"not a readable .keras zip file: {path} ({e})") from None
        if window is not None:
            with window:
                _open_h5(window, f"{path}!{KERAS3_WEIGHTS}").close()
        elif data is not None:
            _open_h5(io.BytesIO(data), f"{path}!{KERAS3_WEIGHTS}").close()
        return
    _open_h5(path, path).close()


def _read_zip(path: str) -> Tuple[Dict[str, bytes], Optional[ZipMemberWindow]]:
    """The members of a ``.keras`` zip read in memory (never extracted to disk), and
    the weights member as a window when it is stored uncompressed (then not read)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(f"not a readable .keras zip file: {path} ({e})") from None
    window = None
    with zf:
        members: Dict[str, bytes] = {}
        for info in zf.infolist():
            _safe_member(info.filename, path)
            if info.filename in ("config.json", "metadata.json", KERAS3_WEIGHTS):
                _check_zip_entry(info, path)
                if info.filename == KERAS3_WEIGHTS:
                    window = stored_member(path, info.filename)
                    if window is not None:
                        continue
                members[info.filename] = zf.read(info)
    if "config.json" not in members:
        raise ConversionError(f"{path}: .keras file has no 'config.json'")
    if window is None and KERAS3_WEIGHTS not in members:
        raise ConversionError(f"{path}: .keras file has no {KERAS3_WEIGHTS!r}")
    return members, window


def _vars_group_arrays(group: Any, path: str, lazy: Optional[LazyH5File]) -> List[Any]:
    """Arrays of a Keras 3 layer group: own ``vars/i`` first, then sub-objects; ``lazy``:
    large ones as ``H5Weight``s of the zip's stored weights member."""
    arrays: List[Any] = []
    if "vars" in group:
        vars_group = group["vars"]
        arrays += [_dataset(vars_group[k], k, path, lazy) for k in sorted(vars_group, key=int)]
    children = [k for k in group if k != "vars" and hasattr(group[k], "keys")]
    rank = {name: i for i, name in enumerate(keras3.CHILD_ORDER)}
    for key in sorted(children, key=lambda k: (rank.get(k, len(rank)), k)):
        arrays += _vars_group_arrays(group[key], path, lazy)
    return arrays


def _groups_by_layer_name(layers_group: Any) -> Dict[str, Any]:
    """``layers/<key>`` groups of a ``.keras`` weights file keyed by real layer name
    (keys are class-derived like ``dense_1``; ``vars`` carries the layer's name)."""
    out: Dict[str, Any] = {}
    for key in sorted(layers_group):
        group = layers_group[key]
        vars_group = group["vars"] if "vars" in group else None
        name = (
            _text(vars_group.attrs["name"]) if vars_group is not None and "name" in vars_group.attrs else key
        )
        out[name] = group
    return out


def _zip_layer_arrays(
    group: Any, cls: str, cfg: Mapping[str, Any], path: str, lazy: Optional[LazyH5File]
) -> List[Any]:
    """A layer's arrays in Keras 2 order; nested models go layer by layer in config order."""
    if cls not in keras3.MODEL_CLASSES:
        return _vars_group_arrays(group, path, lazy)
    inner = _groups_by_layer_name(group["layers"]) if "layers" in group else {}
    arrays: List[Any] = []
    for name, icls, icfg in keras3.layer_configs({"config": cfg}):
        if name in inner:
            arrays += _zip_layer_arrays(inner[name], icls, icfg, path, lazy)
    return arrays


def read_keras_zip(path: str, allow_unsafe: bool = False) -> KerasModel:
    """A Keras 3 ``.keras`` zip: config.json + model.weights.h5 (+ metadata.json)."""
    members, window = _read_zip(path)
    try:
        config = json.loads(members["config.json"])
        metadata = json.loads(members.get("metadata.json", b"{}"))
    except ValueError as e:
        raise ConversionError(f"{path}: config.json/metadata.json is not valid JSON ({e})") from None
    keras_version = metadata.get("keras_version")
    translated = keras3.translate_model(config, allow_unsafe)
    classes = {n: (c, cfg) for n, c, cfg in keras3.layer_configs(translated)}
    by_name: Dict[str, List[Any]] = {}
    # A stored weights member is read in place, each large weight when it is written.
    source: Any = window if window is not None else io.BytesIO(members[KERAS3_WEIGHTS])
    lazy = LazyH5File(path, KERAS3_WEIGHTS) if window is not None else None
    with source, _open_h5(source, f"{path}!{KERAS3_WEIGHTS}") as f:
        groups = _groups_by_layer_name(f["layers"]) if "layers" in f else {}
        for name, group in groups.items():
            cls, cfg = classes.get(name, ("<not in config>", {}))
            by_name[name] = _zip_layer_arrays(group, cls, cfg, path, lazy)
        if "vars" in f and len(f["vars"]):
            raise ConversionError(f"{path}: model-level variables are not supported")
    unknown = sorted(n for n, arrays in by_name.items() if arrays and n not in classes)
    if unknown:
        raise ConversionError(f"{path}: weights for layers not in config.json: {', '.join(unknown)}")
    layers = []
    for name, cls, cfg in keras3.layer_configs(translated):
        arrays = by_name.get(name, [])
        names = keras3.keras2_weight_names(name, cls, cfg, len(arrays))
        if arrays:
            layers.append((name, list(zip(names, arrays))))
    backend = None
    return KerasModel(keras_version, backend, translated, None, layers)


def read_keras_file(path: str, allow_unsafe: bool = False, lazy: bool = False) -> KerasModel:
    """Dispatch on content: zip -> ``.keras``; otherwise HDF5 (``lazy``: see ``read_h5``)."""
    if zipfile.is_zipfile(path):
        return read_keras_zip(path, allow_unsafe)
    return read_h5(path, allow_unsafe, lazy)
