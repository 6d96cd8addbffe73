"""Give a Keras 2 h5 layer's stored weights the names tfjs-layers pairs with its variables.

Keras 2 writes each weight under the TensorFlow variable's name, which old Keras
uniquified per session: a model built after another one in the same process stores
layer ``conv2d_1``'s kernel as ``conv2d_1_1/kernel:0``. tfjs-layers names its
variables after the layer (``conv2d_1/kernel``) and refuses the stored name ("Provided
weight data has no target variable"). Names that already pair are kept unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tfjsconv.errors import ConversionError
from tfjsconv.layers import check_weights, keras3


def _pairs(name: str, created: Mapping[str, Any]) -> bool:
    return name in created or check_weights.loader_alias(name) in created


def _layout_names(layer: str, cls: str, config: Mapping[str, Any], count: int) -> list[str]:
    try:
        return keras3.keras2_weight_names(layer, cls, config, count)
    except (ConversionError, KeyError, TypeError):
        return []


def _fix_prefix(layer: str, name: str) -> str:
    """``conv2d_1_1/kernel`` -> ``conv2d_1/kernel`` for layer ``conv2d_1``."""
    head, sep, rest = name.partition("/")
    if sep and head != layer and re.fullmatch(re.escape(layer) + r"(_\d+)+", head):
        return f"{layer}/{rest}"
    return name


def owner_layer(prefix: str, layer_names: Sequence[str]) -> str | None:
    """The layer a weight-name prefix belongs to: itself, or the longest layer name it
    uniquifies (``conv2d_1_1`` -> ``conv2d_1`` even when ``conv2d`` exists too)."""
    if prefix in layer_names:
        return prefix
    owners = [n for n in layer_names if re.fullmatch(re.escape(n) + r"(_\d+)+", prefix)]
    return max(owners, key=len) if owners else None


def tfjs_weight_names(layer: str, cls: str, config: Mapping[str, Any], stored: list[str]) -> list[str]:
    """``stored`` (``:0`` already removed) renamed where tfjs would not pair them.

    Where the class's variables are known (``check_weights.created_variables``), a name that
    does not pair takes the Keras 2 name at the same position if both end in the same
    variable name (``kernel``); otherwise a uniquified first component is replaced by
    the layer name.
    """
    created = check_weights.created_variables(layer, cls, config)
    if created is not None and all(_pairs(n, created) for n in stored):
        return list(stored)
    layout = _layout_names(layer, cls, config, len(stored))
    out = []
    for i, name in enumerate(stored):
        if created is not None and _pairs(name, created):
            out.append(name)
        elif layout and layout[i].rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]:
            out.append(layout[i])
        else:
            out.append(_fix_prefix(layer, name))
    return out


def keras3_by_config(
    translated: Any, arrays_by_layer: Mapping[str, Sequence[Any]]
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Keras 3 weights (by layer, in Keras 3's order) named as Keras 2 names them, layer
    by layer in the order of the translated config; layers without weights are left out."""
    layers = []
    for name, cls, cfg in keras3.layer_configs(translated):
        arrays = arrays_by_layer.get(name, [])
        names = keras3.keras2_weight_names(name, cls, cfg, len(arrays))
        if arrays:
            layers.append((name, list(zip(names, arrays, strict=False))))
    return layers
