"""Entry points named by the ``tfjsconv.api`` dispatch table for layers models.

Each takes ``(input_path, staging_path, options)``; ``staging_path`` is a fresh empty
directory (or, for the ``keras``/``keras_keras`` outputs, a file path to create).
Atomicity and overwrite handling live in ``api.convert``, not here.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from tfjsconv import model_json, weights
from tfjsconv.errors import ConversionError
from tfjsconv.layers import artifacts, check_weights, fields, keras3, tfjs_files, weight_names
from tfjsconv.layers.keras_files import KerasModel, read_keras_file
from tfjsconv.options import ConversionOptions


def keras_to_layers(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Keras h5 (Keras 2 or 3) or ``.keras`` zip -> layers model, without TensorFlow."""
    if os.path.isdir(input_path):
        raise ConversionError(
            f"expected a Keras .h5 or .keras file, got a directory: {input_path} "
            "(use --input_format keras_saved_model for a Keras SavedModel)"
        )
    try:
        model = read_keras_file(input_path, options.allow_unsafe_deserialization, lazy=True)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        # The config parsed as JSON but lacks the structure Keras writes.
        raise ConversionError(
            f"{input_path}: malformed Keras model config ({type(e).__name__}: {e})"
        ) from None
    artifacts.write_layers_model(model, staging_path, options)


def keras_saved_model_to_layers(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Keras SavedModel -> (tf_keras) private temp h5 -> the h5 path."""
    from tfjsconv.graph import scan
    from tfjsconv.layers import tf_keras_io  # imports TensorFlow quietly; loads nothing yet
    from tfjsconv.proto_readers import read_saved_model_proto

    # Untrusted input: every MetaGraph is checked as protobuf before tf_keras loads it.
    for meta in read_saved_model_proto(input_path).meta_graphs:
        scan.scan_saved_model(
            input_path,
            meta,
            allow_unsafe=options.allow_unsafe_deserialization,
            follow_symlinks=options.follow_symlinks,
        )

    with tempfile.TemporaryDirectory(prefix="tfjsconv-") as tmp:
        h5_path = os.path.join(tmp, "model.h5")
        tf_keras_io.saved_model_to_h5(input_path, h5_path)
        keras_to_layers(h5_path, staging_path, options)


def _layer_prefix(name: str) -> str:
    return name.split("/", 1)[0]


def _split_by_layer_prefix(
    named: list[tuple[str, np.ndarray]],
) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Group consecutive weights by their first name component (the layer)."""
    out: list[tuple[str, list[tuple[str, np.ndarray]]]] = []
    index: dict[str, int] = {}
    for name, array in named:
        layer = _layer_prefix(name)
        if layer not in index:
            index[layer] = len(out)
            out.append((layer, []))
        out[index[layer]][1].append((name, array))
    return out


def _names_for_tfjs(
    config: Any, layers: list[tuple[str, list[tuple[str, np.ndarray]]]]
) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Rename uniquified weight names (``conv2d_1_1/kernel``, as the reference converter
    copies them from old h5 files) to the ones tfjs pairs; other names are kept."""
    if not isinstance(config, dict) or config.get("class_name") not in keras3.MODEL_CLASSES:
        return layers
    classes = {n: (c, cfg) for n, c, cfg in keras3.layer_configs(config)}
    # Nested models' weights carry their inner layers' names: those are real names too.
    leaves = {leaf for n, (c, cfg) in classes.items() for leaf in check_weights.leaf_layer_names(n, c, cfg)}
    out = []
    for prefix, ws in layers:
        owner = None if prefix in leaves else weight_names.owner_layer(prefix, list(classes))
        if owner is None or owner == prefix:
            out.append((prefix, ws))
            continue
        cls, cfg = classes[owner]
        names = weight_names.tfjs_weight_names(owner, cls, cfg, [n for n, _ in ws])
        out.append((owner, [(n, a) for n, (_, a) in zip(names, ws, strict=False)]))
    return out


def _without_model_prefix(named: list[tuple[str, Any]], config: Any) -> list[tuple[str, Any]]:
    """Weight names without the model's own name in front: the reference names a Keras 3
    Sequential's weights by their variable paths (``sequential/dense/kernel``)."""
    model = config.get("config", {}).get("name") if isinstance(config, dict) else None
    layer_names = {name for name, _, _ in keras3.layer_configs(config)}
    prefix = f"{model}/"
    if not isinstance(model, str) or model in layer_names or not named:
        return named
    if not all(name.startswith(prefix) for name, _ in named):
        return named
    return [(name[len(prefix) :], array) for name, array in named]


def _keras3_topology_to_keras2(topo: dict[str, Any], named, options: ConversionOptions):
    """A Keras-3-style topology (as the reference writes for Keras 3 h5) -> Keras 2."""
    translated = keras3.translate_model(topo["model_config"], options.allow_unsafe_deserialization)
    named = _without_model_prefix(named, translated)
    by_layer = {name: [a for _, a in ws] for name, ws in _split_by_layer_prefix(named)}
    layers = weight_names.keras3_by_config(translated, by_layer)
    stray = set(by_layer) - {name for name, _, _ in keras3.layer_configs(translated)}
    if stray:
        raise ConversionError(
            "weights that do not belong to any layer of the Keras 3 model: " + ", ".join(sorted(stray))
        )
    return KerasModel(topo.get("keras_version"), topo.get("backend"), translated, None, layers)


def _looks_keras3(topo: Any) -> bool:
    if not isinstance(topo, dict) or not isinstance(topo.get("model_config"), dict):
        return False
    # Judge by content, not keras_version: our own outputs of Keras 3 files carry
    # keras_version 3.x but are already Keras-2 style.
    text = model_json.dumps(topo["model_config"])
    return any(marker in text for marker in (b'"batch_shape"', b"__keras_tensor__", b'"DTypePolicy"'))


def layers_to_layers(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Re-shard / re-quantize a layers model without TensorFlow.

    Quantized inputs are dequantized first. Keras-3-style topologies (the reference
    converter copies them verbatim) are translated so that tfjs can load the result.
    """
    # Weights are read from the input shards one at a time, as they are written.
    obj, named = model_json.load_tfjs_model(input_path, lazy=True, follow_symlinks=options.follow_symlinks)
    if obj.get("format", "layers-model") != "layers-model":
        raise ConversionError(f"{input_path} is a {obj.get('format')!r}, not a layers-model")
    topo = tfjs_files.wrapped_topology(obj.get("modelTopology"))
    if isinstance(topo, dict) and _looks_keras3(topo):
        model = _keras3_topology_to_keras2(topo, named, options)
    else:
        config = topo.get("model_config") if isinstance(topo, dict) else None
        model = KerasModel(
            topo.get("keras_version") if isinstance(topo, dict) else None,
            topo.get("backend") if isinstance(topo, dict) else None,
            config,
            topo.get("training_config") if isinstance(topo, dict) else None,
            _names_for_tfjs(config, _split_by_layer_prefix(named)),
        )
    new_topo: dict[str, Any] | None
    if isinstance(topo, dict) and not _looks_keras3(topo):
        new_topo = topo  # passed through, less what tfjs ignores and inference does not need
    else:
        new_topo = artifacts.topology(model)
    if isinstance(new_topo, dict) and "model_config" in new_topo:
        new_topo = {**new_topo, "model_config": fields.drop_ignored_fields(new_topo["model_config"])}
    artifacts.ensure_loadable(new_topo, [w for _, ws in model.layers for w in ws], options)
    groups = artifacts.weight_groups(model.layers, options.split_weights_by_layer)
    manifest = weights.write_weights(
        groups,
        staging_path,
        shard_size_bytes=options.weight_shard_size_bytes,
        quantization=options.quantization_specs,
    )
    metadata = options.metadata_dict or obj.get("userDefinedMetadata") or None
    out = artifacts.build_model_json(obj.get("generatedBy"), new_topo, manifest, metadata)
    model_json.write_model_json(staging_path, out)


def _load_for_keras(input_path: str, follow_symlinks: bool = False):
    from tfjsconv.layers import tf_keras_io

    obj, named = model_json.load_tfjs_model(input_path, follow_symlinks=follow_symlinks)
    topo = tfjs_files.wrapped_topology(obj.get("modelTopology"))
    if not isinstance(topo, dict) or not isinstance(topo.get("model_config"), dict):
        raise ConversionError(
            f"{input_path} has no model topology (weights-only); cannot build a Keras model"
        )
    return tf_keras_io, topo, named


def _to_keras(input_path: str, options: ConversionOptions):
    tf_keras_io, topo, named = _load_for_keras(input_path, options.follow_symlinks)
    if _looks_keras3(topo):
        model = _keras3_topology_to_keras2(topo, named, options)
        topo = artifacts.topology(model)
        named = [w for _, ws in model.layers for w in ws]
    return tf_keras_io.build_model(topo, named, options.allow_unsafe_deserialization)


def layers_to_keras_h5(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Layers model -> Keras 2 HDF5 file (quantized weights are dequantized)."""
    from tfjsconv.layers import tf_keras_io

    tf_keras_io.save_h5(_to_keras(input_path, options), staging_path)


def layers_to_keras_keras(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Layers model -> ``.keras`` zip written by tf_keras (repacked deterministically)."""
    from tfjsconv.layers import tf_keras_io

    tf_keras_io.save_keras_zip(_to_keras(input_path, options), staging_path)


def layers_to_keras_saved_model(input_path: str, staging_path: str, options: ConversionOptions) -> None:
    """Layers model -> Keras SavedModel directory."""
    from tfjsconv.layers import tf_keras_io

    tf_keras_io.save_saved_model(_to_keras(input_path, options), staging_path)
