"""Keras layer config fields versus what tfjs-layers 4.22 accepts (``data/tfjs_layers_fields.json``).

tfjs-layers turns a Keras config's snake_case keys into camelCase and hands them to the
class; it ignores fields it does not know and throws on a few (SeparableConv2D's
``kernel_initializer``: "Fields kernelInitializer, ... are invalid for SeparableConv2D").
An ignored field is harmless only when it does not change inference. So a field outside
the accepted set is

- harmless when it only matters for training or picks an implementation
  (initializers, regularizers, constraints, ``implementation``, batch-renorm ...), or
  when it holds the value that means what tfjs does anyway (``groups=1``,
  ``data_format='channels_last'``, ``time_major=False``, ...). A harmless field is
  dropped only when the class's constructor reads it (``reads`` in the data file: it
  throws on it or reads and ignores it); one the constructor never looks at stays, so
  the topology is the one the reference converter writes;
- otherwise left in place, and ``unsupported_fields`` reports it so the conversion is
  refused (tfjs would silently compute something else).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from tfjsconv import datafiles
from tfjsconv.layers import translate

_CONTAINERS = ("Sequential", "Functional", "Model")

# Fields that never change what a loaded model computes.
_NEUTRAL = frozenset(
    {
        "activity_regularizer",
        "implementation",
        "unroll",
        "use_cudnn",
        "fused",
        "renorm",
        "renorm_clipping",
        "renorm_momentum",
        "momentum",
        "virtual_batch_size",
        "adjustment",
        "trainable",
        "seed",
        "noise_shape",
        "dropout",
        "recurrent_dropout",
        "autocast",
        "rng_type",
    }
)
_NEUTRAL_SUFFIXES = ("_initializer", "_regularizer", "_constraint")

# Fields whose listed values mean what tfjs-layers does without the field.
_HARMLESS_VALUES: Mapping[str, tuple[Any, ...]] = {
    "groups": (1,),
    "data_format": ("channels_last", None),
    "dilation_rate": (1, (1,), (1, 1), (1, 1, 1)),
    "time_major": (False,),
    "zero_output_for_mask": (False,),
    "output_padding": (None,),
    "keepdims": (False,),
    "negative_slope": (0, 0.0),
    "threshold": (0, 0.0),
    "sparse": (False,),
    "ragged": (False,),
    "optional": (False,),
    "depth_multiplier": (1,),
    "pad_to_aspect_ratio": (False,),
    "antialias": (False,),
    "fill_mode": ("constant",),  # these two only apply with pad_to_aspect_ratio
    "fill_value": (0, 0.0),
}


@functools.cache
def accepted() -> Mapping[str, frozenset[str]]:
    """Class -> camelCase config fields tfjs-layers 4.22 accepts."""
    data = datafiles.load_json("tfjs_layers_fields.json")["fields"]
    return {cls: frozenset(keys) for cls, keys in data.items()}


@functools.cache
def constructor_reads() -> Mapping[str, frozenset[str]]:
    """Class -> camelCase fields its constructor reads without accepting them (``*``: all)."""
    data = datafiles.load_json("tfjs_layers_fields.json")["reads"]
    return {cls: frozenset(keys) for cls, keys in data.items()}


def _read_by(cls: str | None, key: str) -> bool:
    reads = constructor_reads().get(cls, frozenset()) if isinstance(cls, str) else frozenset()
    return "*" in reads or to_camel(key) in reads


@functools.lru_cache(maxsize=4096)
def to_camel(key: str) -> str:
    """tfjs's ``toCamelCase`` (applied to every config key it loads)."""
    if len(key) <= 1 or "_" not in key:
        return key
    return re.sub(r"_+(\w|$)", lambda m: m.group(1).upper(), key)


def _same(value: Any, harmless: tuple[Any, ...]) -> bool:
    if isinstance(value, list):
        value = tuple(value)
    return any(
        value == h and type(value) is type(h) or (isinstance(value, tuple) and value == h) for h in harmless
    )


def droppable(key: str, value: Any) -> bool:
    """Whether tfjs ignoring ``key=value`` leaves inference unchanged."""
    if key in _NEUTRAL or key.endswith(_NEUTRAL_SUFFIXES):
        return True
    if key in _HARMLESS_VALUES:
        return _same(value, _HARMLESS_VALUES[key])
    return False


def _fix_layer(layer: dict[str, Any]) -> dict[str, Any]:
    layer = translate.layer(layer)  # exact tfjs equivalents first (Identity -> Activation)
    cls = layer.get("class_name")
    config = layer.get("config")
    if isinstance(config, list):  # Keras 1/2.0-era Sequential
        return {**layer, "config": [_fix_any(item) for item in config]}
    if not isinstance(config, dict):
        return layer
    known = accepted().get(cls) if isinstance(cls, str) else None
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("layer", "cell", "forward_layer", "backward_layer") and isinstance(value, dict):
            value = _fix_any(value)
        elif key in ("layers", "cells") and isinstance(value, list):
            value = [_fix_any(v) for v in value]
        if known is not None and to_camel(key) not in known and droppable(key, value) and _read_by(cls, key):
            continue
        out[key] = value
    if cls == "Bidirectional" and isinstance(out.get("layer"), dict):
        # Keras 3 writes the wrapper's own zero_output_for_mask=return_sequences into the
        # wrapped layer; Keras 2 sets it without saving it. Either way the wrapper implies
        # it, and check_masks.mask_problems judges its effect.
        inner = out["layer"]
        if isinstance(inner.get("config"), dict) and "zero_output_for_mask" in inner["config"]:
            inner_cfg = {k: v for k, v in inner["config"].items() if k != "zero_output_for_mask"}
            out["layer"] = {**inner, "config": inner_cfg}
    return {**layer, "config": out}


def _fix_any(value: Any) -> Any:
    return _fix_layer(value) if isinstance(value, dict) and "class_name" in value else value


def drop_ignored_fields(model_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``model_config`` without the fields tfjs's constructors read but inference
    does not need, and with ``translate``'s exact rewrites applied to every layer."""
    return _fix_any(model_config) if model_config is not None else None


def unsupported_fields(cls: str, config: Mapping[str, Any]) -> list[str]:
    """Sorted ``key=value`` texts of fields tfjs-layers would ignore although they matter."""
    if cls in _CONTAINERS:
        return []
    known = accepted().get(cls)
    if known is None:
        return []
    return sorted(f"{k}={v!r}" for k, v in config.items() if to_camel(k) not in known and not droppable(k, v))
