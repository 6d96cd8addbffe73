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
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.layers import keras3, weight_names
from tfjsconv.layers.h5_files import (
    LazyH5File,
    _dataset,
    _h5_layer_weights,
    _json_attr,
    _names,
    _open_h5,
    _order_layers,
    _text,
)
from tfjsconv.layers.keras_zip import KERAS3_WEIGHTS, _check_zip_entry, _read_zip, _safe_member, stored_member

# (weight name, array) pairs of one layer.
LayerWeights = tuple[str, list[tuple[str, np.ndarray]]]


@dataclasses.dataclass(frozen=True)
class KerasModel:
    """What a layers model.json needs, independent of the input file format."""

    keras_version: str | None
    backend: str | None
    model_config: dict[str, Any] | None  # None for weights-only files
    training_config: dict[str, Any] | None
    layers: list[LayerWeights]  # model order; layers without weights omitted


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
        layers = weight_names.rename_by_config(raw, config, weight_names.keras2_names_of_keras3)
        # A Keras 3 training_config is Keras 3 style too; tfjs would try to compile it.
        return KerasModel(keras_version, backend, config, None, layers)

    check_safe_keras2(model_config, allow_unsafe)
    config = translate_class_names(model_config)
    layers = weight_names.rename_by_config(raw, config, weight_names.tfjs_weight_names)
    return KerasModel(keras_version, backend, config, training_config, layers)


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


def _vars_group_arrays(group: Any, path: str, lazy: LazyH5File | None) -> list[Any]:
    """Arrays of a Keras 3 layer group: own ``vars/i`` first, then sub-objects; ``lazy``:
    large ones as ``H5Weight``s of the zip's stored weights member."""
    arrays: list[Any] = []
    if "vars" in group:
        vars_group = group["vars"]
        arrays += [_dataset(vars_group[k], k, path, lazy) for k in sorted(vars_group, key=int)]
    children = [k for k in group if k != "vars" and hasattr(group[k], "keys")]
    rank = {name: i for i, name in enumerate(keras3.CHILD_ORDER)}
    for key in sorted(children, key=lambda k: (rank.get(k, len(rank)), k)):
        arrays += _vars_group_arrays(group[key], path, lazy)
    return arrays


def _groups_by_layer_name(layers_group: Any) -> dict[str, Any]:
    """``layers/<key>`` groups of a ``.keras`` weights file keyed by real layer name
    (keys are class-derived like ``dense_1``; ``vars`` carries the layer's name)."""
    out: dict[str, Any] = {}
    for key in sorted(layers_group):
        group = layers_group[key]
        vars_group = group["vars"] if "vars" in group else None
        name = (
            _text(vars_group.attrs["name"]) if vars_group is not None and "name" in vars_group.attrs else key
        )
        out[name] = group
    return out


def _zip_layer_arrays(
    group: Any, cls: str, cfg: Mapping[str, Any], path: str, lazy: LazyH5File | None
) -> list[Any]:
    """A layer's arrays in Keras 2 order; nested models go layer by layer in config order."""
    if cls not in keras3.MODEL_CLASSES:
        return _vars_group_arrays(group, path, lazy)
    inner = _groups_by_layer_name(group["layers"]) if "layers" in group else {}
    arrays: list[Any] = []
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
    by_name: dict[str, list[Any]] = {}
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
    layers = weight_names.keras3_by_config(translated, by_name)
    backend = None
    return KerasModel(keras_version, backend, translated, None, layers)


def read_keras_file(path: str, allow_unsafe: bool = False, lazy: bool = False) -> KerasModel:
    """Dispatch on content: zip -> ``.keras``; otherwise HDF5 (``lazy``: see ``read_h5``)."""
    if zipfile.is_zipfile(path):
        return read_keras_zip(path, allow_unsafe)
    return read_h5(path, allow_unsafe, lazy)
