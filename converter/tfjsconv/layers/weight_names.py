"""Give a Keras 2 h5 layer's stored weights the names tfjs-layers pairs with its variables.

Keras 2 writes each weight under the TensorFlow variable's name, which old Keras
uniquified per session: a model built after another one in the same process stores
layer ``conv2d_1``'s kernel as ``conv2d_1_1/kernel:0``. tfjs-layers names its
variables after the layer (``conv2d_1/kernel``) and refuses the stored name ("Provided
weight data has no target variable"). Names that already pair are kept unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
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


# namer(layer, class, layer config, stored weight names) -> the names to write.
Namer = Callable[[str, str, Mapping[str, Any], list[str]], list[str]]


def keras2_names_of_keras3(layer: str, cls: str, config: Mapping[str, Any], stored: list[str]) -> list[str]:
    """A ``Namer``: Keras 3 weights take the names Keras 2 gives the same variables."""
    return keras3.keras2_weight_names(layer, cls, config, len(stored))


def rename_by_config(
    stored: Sequence[tuple[str, Sequence[tuple[str, Any]]]], config: Any, namer: Namer
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Each layer of ``stored`` that has weights, in the given order, its weights renamed
    by ``namer`` from the layer's class and config in the model ``config`` (a layer the
    config lacks is named as ``<not in config>``, which the checks refuse by name)."""
    classes = {n: (c, cfg) for n, c, cfg in keras3.layer_configs(config)}
    layers = []
    for name, weights in stored:
        if not weights:
            continue
        cls, cfg = classes.get(name, ("<not in config>", {}))
        names = namer(name, cls, cfg, [n for n, _ in weights])
        layers.append((name, [(n, a) for n, (_, a) in zip(names, weights, strict=False)]))
    return layers


def keras3_by_config(
    translated: Any, arrays_by_layer: Mapping[str, Sequence[Any]]
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Keras 3 weights (by layer, in Keras 3's order) named as Keras 2 names them, layer
    by layer in the order of the translated config; layers without weights are left out."""
    in_config_order = [
        (name, [("", a) for a in arrays_by_layer.get(name, [])])
        for name, _, _ in keras3.layer_configs(translated)
    ]
    return rename_by_config(in_config_order, translated, keras2_names_of_keras3)
