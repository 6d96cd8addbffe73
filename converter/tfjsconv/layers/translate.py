"""Exact rewrites of Keras layer configs into spellings tfjs-layers 4.22 loads.

Each rewrite replaces something tfjs does not register by a tfjs object that computes
the same function (no approximation): anything without such an equivalent is left
alone, and ``check`` refuses it at conversion time.

- activation ``silu`` (Keras 3's name, also what it writes for ``swish``) -> ``swish``:
  tfjs's swish is ``x * sigmoid(alpha * x)`` with alpha = 1, Keras's silu ``x * sigmoid(x)``;
- regularizers ``L1(l1)`` / ``L2(l2)`` -> ``L1L2(l1, 0)`` / ``L1L2(0, l2)`` (tfjs registers
  only L1L2; regularizers never change inference, but an unknown class fails the load);
- a set ``activity_regularizer`` is dropped: it only adds a training loss, and tfjs-layers
  4.22 throws when a layer that has one is called ("Layer invocation in the presence of
  activity regularizer(s) is not supported yet"); an unset one (``None``) is kept, as the
  reference converter writes it;
- the ``Identity`` layer -> ``Activation('linear')`` (tfjs registers ``Identity`` only
  as an initializer): both return their input and pass its mask on.

Initializers, regularizers and constraints of the frameworks become the tfjs classes
that build them (``framework_objects``; they never change inference). One rewrite is a
narrowing, the one tfjs itself imposes: a ``dtype`` tfjs cannot hold
(int64, float64, ...) becomes the one it uses (``dtypes``), as the weights do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfjsconv.layers import dtypes, framework_objects

ACTIVATION_KEYS = ("activation", "recurrent_activation")

# Keras activation name -> the tfjs activation computing exactly the same function.
_ACTIVATIONS: Mapping[str, str] = {"silu": "swish"}

_REGULARIZERS: Mapping[str, str] = {"L1": "l1", "L2": "l2"}


def _regularizer(value: Any) -> Any:
    """``{class_name: L1|L2, config: {l1|l2: x}}`` -> the equivalent ``L1L2``."""
    if not isinstance(value, dict) or value.get("class_name") not in _REGULARIZERS:
        return value
    config = value.get("config")
    if not isinstance(config, dict):
        return value
    key = _REGULARIZERS[value["class_name"]]
    factor = config.get(key, 0.01)
    if not isinstance(factor, (int, float)) or isinstance(factor, bool):
        return value
    l1l2 = {"l1": factor if key == "l1" else 0.0, "l2": factor if key == "l2" else 0.0}
    return {**value, "class_name": "L1L2", "config": l1l2}


def layer_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A layer's ``config`` with its activations and regularizers rewritten."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "activity_regularizer" and value is not None:
            continue
        if key in ACTIVATION_KEYS and isinstance(value, str):
            value = _ACTIVATIONS.get(value, value)
        elif key == "dtype":
            value = dtypes.config_dtype(value)
        elif key.endswith("_regularizer"):
            value = _regularizer(value)
        out[key] = framework_objects.for_tfjs(key, value)
    return out


def layer(serialized: Mapping[str, Any]) -> dict[str, Any]:
    """A serialized ``{class_name, config, ...}`` layer, rewritten for tfjs (not its children)."""
    cls = serialized.get("class_name")
    config = serialized.get("config")
    if not isinstance(config, dict):
        return dict(serialized)
    config = layer_config(config)
    if cls == "Identity":
        keep = {k: v for k, v in config.items() if k in ("name", "trainable", "dtype", "batch_input_shape")}
        return {**serialized, "class_name": "Activation", "config": {**keep, "activation": "linear"}}
    return {**serialized, "config": config}
