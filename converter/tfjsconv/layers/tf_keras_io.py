"""The paths that need a live Keras model: build one with tf_keras and save it.

Imported lazily: importing this module imports TensorFlow (seconds, ~650 MB).
Models are rebuilt with ``model_from_json`` (config only, never pickled code unless
the user allowed unsafe deserialization) and weights are assigned by name.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfjsconv import tf_env
from tfjsconv.errors import ConversionError
from tfjsconv.layers import framework_objects
from tfjsconv.layers.keras_files import check_safe_keras2

tf_env.import_tensorflow()  # quiet, reproducible TF before tf_keras pulls it in
import tf_keras  # noqa: E402

# Fixed timestamp for the members of repacked zips (the earliest a zip can hold).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _strip(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _shorten(name: str) -> str:
    """``layer/cell/kernel`` -> ``layer/kernel`` (how tfjs names RNN cell weights)."""
    parts = name.split("/")
    return "/".join(parts[:-2] + parts[-1:]) if len(parts) >= 3 else name


def _quietly(fn):
    """Run ``fn`` without tf_keras's advice on stderr.

    Saving HDF5 warns that the format is "legacy" and loading warns about unbuilt
    metrics: noise for a converter whose errors must stay one line. Real failures
    still raise.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tf_logger = logging.getLogger("tensorflow")
        level = tf_logger.level
        tf_logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)
        finally:
            tf_logger.setLevel(level)

    return wrapper


_OBJECT_MODULES = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}


def _is_class(module: Any, name: Any) -> bool:
    return isinstance(name, str) and isinstance(getattr(module, name, None), type)


def unknown_classes(model_config: Mapping[str, Any]) -> list[str]:
    """Layer, initializer, regularizer and constraint classes of ``model_config`` that
    tf_keras does not define (``what 'Class'`` texts): a custom class, whose code a
    model.json does not carry, so no Keras model can be built from it."""
    from tf_keras.src.layers import serialization  # the table model_from_json looks up

    from tfjsconv.layers import check_classes  # the same layer walk as the tfjs check

    serialization.populate_deserializable_objects()
    layer_classes = serialization.LOCAL.ALL_OBJECTS
    found: list[str] = []
    for name, cls, config in check_classes.walk_layers(model_config):
        if not isinstance(layer_classes.get(cls), type):
            found.append(f"layer {name!r} has class {cls!r}")
        for key, value in config.items():
            suffix = next((s for s in _OBJECT_MODULES if key.endswith(s)), None)
            if suffix is None or not isinstance(value, dict):
                continue
            module = getattr(tf_keras, _OBJECT_MODULES[suffix])
            if not _is_class(module, value.get("class_name")):
                found.append(f"layer {name!r} has {key} class {value.get('class_name')!r}")
    return found


@_quietly
def build_model(
    topology: Mapping[str, Any], named: Sequence[tuple[str, np.ndarray]], allow_unsafe: bool
) -> Any:
    """A tf_keras model from a layers ``modelTopology`` with weights set by name."""
    config = framework_objects.for_keras(topology["model_config"])
    check_safe_keras2(config, allow_unsafe)
    unknown = unknown_classes(config)
    if unknown:
        raise ConversionError(
            "cannot build a Keras model: " + "; ".join(unknown) + ", which Keras does not define "
            "(a custom class: the model.json does not carry its code)"
        )
    try:
        model = tf_keras.models.model_from_json(json.dumps(config))
    except Exception as e:  # noqa: BLE001 - Keras raises many types for bad configs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"tf_keras cannot rebuild the model from its topology: {first}") from None
    by_name: dict[str, np.ndarray] = {}
    short: dict[str, np.ndarray] = {}
    for name, array in named:
        by_name[name] = array
        short.setdefault(_shorten(name), array)
    used = set()
    missing: list[str] = []
    for layer in model.layers:
        values = []
        for w in layer.weights:
            n = _strip(w.name)
            for candidate in (n, _shorten(n)):
                if candidate in by_name:
                    values.append(by_name[candidate])
                    used.add(candidate)
                    break
                if candidate in short:
                    values.append(short[candidate])
                    used.add(candidate)
                    break
            else:
                missing.append(n)
        if missing:
            continue
        if values:
            shapes = [tuple(w.shape) for w in layer.weights]
            got = [tuple(v.shape) for v in values]
            if shapes != got:
                raise ConversionError(
                    f"layer {layer.name!r}: weight shapes {got} do not match the topology {shapes}"
                )
            layer.set_weights(values)
    if missing:
        raise ConversionError("weights missing from the layers model: " + ", ".join(missing))
    return model


@_quietly
def saved_model_to_h5(saved_model_dir: str, h5_path: str) -> None:
    """Load a Keras SavedModel with tf_keras and re-save it as HDF5.

    The weights stream when they can (``_stream_to_h5``): the model is loaded without
    its checkpoint and each layer's weights are copied from the checkpoint into the h5
    file as tf_keras writes that layer, so only one layer's weights are ever in memory.
    """
    if _stream_to_h5(saved_model_dir, h5_path):
        return
    try:
        model = tf_keras.models.load_model(saved_model_dir, compile=False)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(f"cannot load Keras SavedModel {saved_model_dir}: {e}") from None
    model.save(h5_path, save_format="h5")


def _stream_to_h5(saved_model_dir: str, h5_path: str) -> bool:
    """``saved_model_to_h5`` with values read from the checkpoint as tf_keras's h5 writer
    asks for them (``backend.batch_get_value``, one layer at a time); False when the
    model cannot (a variable without a checkpoint key): the caller loads it whole."""
    import tensorflow as tf
    from tf_keras.src import backend

    from tfjsconv.graph import checkpoint_source

    prefix = checkpoint_source.saved_model_checkpoint(saved_model_dir)
    if prefix is None:
        return False
    skip = tf.saved_model.LoadOptions(experimental_skip_checkpoint=True)
    try:
        source = checkpoint_source.CheckpointSource(prefix)
        model = tf_keras.models.load_model(saved_model_dir, compile=False, options=skip)
        keys = checkpoint_source.variable_keys(model, source)
    except Exception:  # noqa: BLE001 - the full load reports why the model cannot load
        return False
    if not model.weights or any(id(v) not in keys for v in model.weights):
        logging.getLogger(__name__).info("a Keras variable has no checkpoint key: loading the model whole")
        return False

    def read(variables: Sequence[Any]) -> list[np.ndarray]:
        return [source.read(keys[id(v)]) for v in variables]

    original = backend.batch_get_value
    backend.batch_get_value = read
    try:
        model.save(h5_path, save_format="h5")
    finally:
        backend.batch_get_value = original
    return True


@_quietly
def save_h5(model: Any, path: str) -> None:
    model.save(path, save_format="h5", include_optimizer=False)


@_quietly
def save_keras_zip(model: Any, path: str) -> None:
    """Save as ``.keras`` in a private temp dir, then repack without timestamps."""
    with tempfile.TemporaryDirectory(prefix="tfjsconv-") as tmp:
        raw = os.path.join(tmp, "model.keras")
        model.save(raw, save_format="keras")
        with zipfile.ZipFile(raw) as src:
            members = {info.filename: src.read(info) for info in src.infolist()}
    if "metadata.json" in members:
        meta = json.loads(members["metadata.json"])
        meta.pop("date_saved", None)
        members["metadata.json"] = json.dumps(meta).encode("utf-8")
    with zipfile.ZipFile(path, "w") as dst:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, members[name])


@_quietly
def save_saved_model(model: Any, out_dir: str) -> None:
    tf_keras.models.save_model(model, out_dir, save_format="tf", include_optimizer=False)
