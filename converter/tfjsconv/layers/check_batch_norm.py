"""The BatchNormalization checker: an axis other than the last computes wrong values in
tfjs-layers 4.22."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfjsconv.layers import keras3
from tfjsconv.layers.check_classes import Problem

# Input ranks, as far as the config fixes them, for BatchNormalization's axis. Classes
# whose output has the rank of their (first) input; others are handled in _out_rank.
_SAME_RANK_PREFIXES = (
    "Activation",
    "ActivityRegularization",
    "Add",
    "AlphaDropout",
    "Average",
    "BatchNormalization",
    "Concatenate",
    "Conv",
    "Cropping",
    "Dense",
    "DepthwiseConv",
    "Dropout",
    "ELU",
    "Gaussian",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "Maximum",
    "MaxPooling",
    "Minimum",
    "Multiply",
    "AveragePooling",
    "PReLU",
    "Permute",
    "ReLU",
    "Rescaling",
    "SeparableConv",
    "Softmax",
    "SpatialDropout",
    "ThresholdedReLU",
    "UpSampling",
    "ZeroPadding",
)


def _out_rank(cls: str, config: Mapping[str, Any], rank: int | None) -> int | None:
    """Rank of the first output of a layer whose (first) input has ``rank`` (None: unknown)."""
    shape = config.get("batch_input_shape") or config.get("batch_shape")
    if cls == "InputLayer":
        return len(shape) if isinstance(shape, list) else None
    if cls == "Flatten":
        return 2
    if cls == "Reshape" and isinstance(config.get("target_shape"), list):
        return 1 + len(config["target_shape"])
    if cls == "RepeatVector":
        return 3
    if cls.startswith("Global"):
        return rank if config.get("keepdims") else 2
    if cls == "Embedding":
        return None if rank is None else rank + 1
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        return 3 if config.get("return_sequences") else 2
    if cls.startswith(_SAME_RANK_PREFIXES) and not cls.startswith("ConvLSTM"):
        return rank
    return None


def batch_norm_problems(model_config: Any) -> list[Problem]:
    """BatchNormalization over another axis than the last: tfjs-layers reshapes its
    statistics to broadcast, but the cpu FusedBatchNorm kernel cycles through them along
    the flattened input as if they were on the last axis -- wrong values. Only judged where
    the input rank follows from the config (top-level Sequential/Functional models)."""
    if not isinstance(model_config, dict) or model_config.get("class_name") not in keras3.MODEL_CLASSES:
        return []
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers") or []
    functional = model_config.get("class_name") != "Sequential"
    ranks: dict[str, int | None] = {}
    found: list[Problem] = []
    rank: int | None = None
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            continue
        cfg, cls = layer["config"], str(layer.get("class_name"))
        name = str(layer.get("name") or cfg.get("name"))
        if functional:
            nodes = layer.get("inbound_nodes") or []
            first = nodes[0][0] if nodes and isinstance(nodes[0], list) and nodes[0] else None
            # The rank of the first input when it is its producer's first output.
            known = isinstance(first, list) and len(first) >= 3 and first[2] == 0
            rank = ranks.get(str(first[0])) if known and isinstance(first, list) else None
        elif rank is None and isinstance(cfg.get("batch_input_shape"), list):
            rank = len(cfg["batch_input_shape"])
        if cls == "BatchNormalization" and rank is not None:
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if isinstance(axis, int) and axis not in (-1, rank - 1):
                found.append(
                    Problem(
                        name,
                        cls,
                        f"axis={axis} on a rank-{rank} input is not the last axis, "
                        "which TensorFlow.js 4.22 normalizes wrongly",
                    )
                )
        rank = _out_rank(cls, cfg, rank)
        ranks[name] = rank
    return found
