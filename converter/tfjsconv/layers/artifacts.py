"""Assemble and write a layers model (model.json + weight shards) from a ``KerasModel``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfjsconv import model_json, weights
from tfjsconv.errors import ConversionError
from tfjsconv.layers import check, check_classes, fields
from tfjsconv.layers.keras_files import KerasModel
from tfjsconv.options import ConversionOptions

log = logging.getLogger(__name__)

WeightGroup = list[tuple[str, np.ndarray]]


def ensure_loadable(
    model_topology: dict[str, Any] | None,
    named: Sequence[tuple[str, np.ndarray]],
    options: ConversionOptions,
) -> None:
    """Refuse (one line) a model tfjs-layers 4.22 would refuse at load (``check``).

    ``--skip_op_check`` turns the refusal into a warning, for users who register
    their own classes in JavaScript.
    """
    problems = check.check_model(model_topology, [(n, a.shape) for n, a in named])
    if not problems:
        return
    if options.skip_op_check:
        log.warning(check_classes.refusal_text(problems) + " (written anyway: --skip_op_check)")
        return
    raise ConversionError(check_classes.refusal_text(problems))


def weight_groups(layers: Sequence[tuple[str, WeightGroup]], split_by_layer: bool) -> list[WeightGroup]:
    """One group for the whole model, or one per layer that has weights."""
    non_empty = [ws for _, ws in layers if ws]
    if split_by_layer:
        return [list(ws) for ws in non_empty]
    return [[w for ws in non_empty for w in ws]]


def topology(model: KerasModel) -> dict[str, Any] | None:
    """``modelTopology`` in the reference's key order (training_config only if present)."""
    if model.model_config is None:
        return None
    topo: dict[str, Any] = {"keras_version": model.keras_version}
    if model.backend is not None:
        topo["backend"] = model.backend
    topo["model_config"] = model.model_config
    if model.training_config is not None:
        topo["training_config"] = model.training_config
    return topo


def build_model_json(
    generated_by: str | None,
    model_topology: dict[str, Any] | None,
    manifest: list[dict[str, Any]],
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "format": "layers-model",
        "generatedBy": generated_by,
        "convertedBy": model_json.converted_by(),
    }
    if metadata:
        obj["userDefinedMetadata"] = metadata
    obj["modelTopology"] = model_topology
    obj["weightsManifest"] = manifest
    return obj


def write_layers_model(model: KerasModel, out_dir: str, options: ConversionOptions) -> str:
    """Write ``out_dir/model.json`` and the shards; return the model.json path."""
    model = dataclasses.replace(model, model_config=fields.drop_ignored_fields(model.model_config))
    topo = topology(model)
    ensure_loadable(topo, [w for _, ws in model.layers for w in ws], options)
    groups = weight_groups(model.layers, options.split_weights_by_layer)
    manifest = weights.write_weights(
        groups,
        out_dir,
        shard_size_bytes=options.weight_shard_size_bytes,
        quantization=options.quantization_specs,
    )
    generated_by = f"keras v{model.keras_version}" if topo is not None else None
    obj = build_model_json(generated_by, topo, manifest, options.metadata_dict or None)
    return model_json.write_model_json(out_dir, obj)
