"""The weight checker: pair the manifest with the variables tfjs-layers 4.22 creates, as
``Container.loadWeights`` does (a scoped name, or the name without its second-to-last
component)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tfjsconv.errors import ConversionError
from tfjsconv.layers import keras3
from tfjsconv.layers.check_classes import Problem, Shape


# The loader's second chance: drop the second-to-last name component.
def loader_alias(name: str) -> str:
    parts = name.split("/")
    return "/".join(parts[:-2] + parts[-1:]) if len(parts) >= 2 else name


def _as_tuple(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _dims(cls: str, config: Mapping[str, Any], rank: int) -> dict[str, Shape]:
    """Shapes of a layer's variables as far as its config fixes them (None = free)."""
    units = config.get("units")
    filters = config.get("filters")
    if cls == "Dense" and isinstance(units, int):
        return {"kernel": (None, units), "bias": (units,)}
    if cls in ("LSTM", "GRU", "SimpleRNN") and isinstance(units, int):
        gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[cls]
        return {
            "kernel": (None, units * gates),
            "recurrent_kernel": (units, units * gates),
            "bias": (units * gates,),
        }
    if cls == "Embedding" and isinstance(config.get("input_dim"), int):
        return {"embeddings": (config["input_dim"], config.get("output_dim"))}
    if cls.startswith("Conv") and cls[4:6] in ("1D", "2D", "3D") and isinstance(filters, int):
        ks = _as_tuple(config.get("kernel_size"))
        if ks is not None and len(ks) == 1:
            ks = ks * rank
        if ks is None or len(ks) != rank:
            return {"bias": (filters,)}
        kernel = ks + ((filters, None) if cls.endswith("Transpose") else (None, filters))
        return {"kernel": kernel, "bias": (filters,)}
    return {}


def created_variables(name: str, cls: str, config: Mapping[str, Any]) -> dict[str, Shape] | None:
    """Scoped variable name -> known dims for what tfjs creates for this layer, or None
    when the class's variables are not modelled here (then its weights are not checked)."""
    if cls in keras3.MODEL_CLASSES:
        out: dict[str, Shape] = {}
        for lname, lcls, lcfg in keras3.layer_configs({"config": config}):
            sub = created_variables(lname, lcls, lcfg)
            if sub is None:
                return None
            out.update(sub)
        return out
    layout = keras3.WEIGHT_LAYOUTS.get(cls)
    if layout is None:
        return {} if not _may_have_weights(cls) else None
    try:
        keras2 = layout(config)
    except (KeyError, TypeError, ConversionError):
        return None
    inner_cls, inner_cfg = cls, config
    if cls in ("Bidirectional", "TimeDistributed"):
        inner = config.get("layer") or {}
        inner_cls, inner_cfg = inner.get("class_name", ""), inner.get("config") or {}
    rank = re.search(r"([123])D", inner_cls)
    dims = _dims(inner_cls, inner_cfg, int(rank.group(1)) if rank else 0)
    out = {}
    for rel in keras2:
        # RNN cells create their variables in the layer's scope (``lstm/kernel``).
        scoped = f"{name}/{rel}"
        if inner_cls in ("LSTM", "GRU", "SimpleRNN"):
            scoped = loader_alias(scoped)
        out[scoped] = dims.get(rel.split("/")[-1], ())
    return out


# Registered classes that create no variables (everything else not in WEIGHT_LAYOUTS
# is "unknown": its weights are passed through unchecked).
_WEIGHTLESS_PREFIXES = (
    "Activation",
    "Add",
    "AlphaDropout",
    "Average",
    "CategoryEncoding",
    "CenterCrop",
    "Concatenate",
    "Cropping",
    "Dot",
    "Dropout",
    "ELU",
    "Flatten",
    "Gaussian",
    "Global",
    "Identity",
    "InputLayer",
    "LeakyReLU",
    "Masking",
    "Max",
    "Min",
    "Multiply",
    "Permute",
    "RandomWidth",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "Resizing",
    "Softmax",
    "SpatialDropout",
    "ThresholdedReLU",
    "UpSampling",
    "ZeroPadding",
    "AveragePooling",
)


def _may_have_weights(cls: str) -> bool:
    return not cls.startswith(_WEIGHTLESS_PREFIXES)


def leaf_layer_names(name: str, cls: str, config: Mapping[str, Any]) -> list[str]:
    """First weight-name components a layer's variables use: nested models' weights
    are named after their inner layers, not after the model."""
    if cls not in keras3.MODEL_CLASSES:
        return [name]
    out: list[str] = []
    for lname, lcls, lcfg in keras3.layer_configs({"config": config}):
        out += leaf_layer_names(lname, lcls, lcfg)
    return out


def weight_problems(model_config: Any, weights: Sequence[tuple[str, Sequence[int]]]) -> list[Problem]:
    """Pair the manifest with the variables tfjs would create, as ``loadWeights`` does."""
    if not isinstance(model_config, dict):
        return []
    layers = (
        keras3.layer_configs(model_config) if model_config.get("class_name") in keras3.MODEL_CLASSES else []
    )
    expected: dict[str, tuple[str, str, Shape]] = {}  # scoped name -> (layer, class, dims)
    unchecked: dict[str, tuple[str, str]] = {}  # first name component -> (layer, class)
    for name, cls, cfg in layers:
        created = created_variables(name, cls, cfg)
        if created is None:
            for leaf in leaf_layer_names(name, cls, cfg):
                unchecked[leaf] = (name, cls)
            continue
        for scoped, dims in created.items():
            expected[scoped] = (name, cls, dims)
    found: list[Problem] = []
    unset = dict(expected)
    for wname, shape in weights:
        target = wname if wname in unset else loader_alias(wname)
        if target in unset:
            layer, cls, dims = expected[target]
            del unset[target]
            if dims and (
                len(dims) != len(shape)
                or any(d is not None and d != s for d, s in zip(dims, shape, strict=False))
            ):
                found.append(
                    Problem(
                        layer,
                        cls,
                        f"weight {wname} has shape {list(shape)} but the layer "
                        f"creates {['?' if d is None else d for d in dims]}",
                    )
                )
            continue
        owner = unchecked.get(wname.split("/", 1)[0])
        if owner is None:
            layer = wname.split("/", 1)[0]
            found.append(Problem(layer, "?", f"weight {wname} has no target variable in TensorFlow.js"))
    by_layer: dict[tuple[str, str], list[str]] = {}
    for scoped, (layer, cls, _) in unset.items():
        by_layer.setdefault((layer, cls), []).append(scoped)
    for (layer, cls), names in sorted(by_layer.items()):
        found.append(Problem(layer, cls, f"no weight data for {', '.join(sorted(names))}"))
    return found
