"""The class checker: layer classes and config values tfjs-layers 4.22 rejects or
computes otherwise, and the ``Problem`` every checker reports (``check`` runs them all)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tfjsconv.layers import compat, fields, translate

GRAPH_HINT = "convert with --output_format=tfjs_graph_model instead"

Shape = tuple[int | None, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason tfjs-layers 4.22 would refuse the model, tied to a layer."""

    layer: str
    cls: str
    reason: str

    def __str__(self) -> str:
        return f"layer '{self.layer}' ({self.cls}): {self.reason}"


def _sub_layers(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(key, serialized layer) pairs a layer config nests (wrappers, RNN cells)."""
    out: list[tuple[str, Any]] = []
    for key in ("layer", "cell", "forward_layer", "backward_layer"):
        if isinstance(config.get(key), dict):
            out.append((key, config[key]))
    for key in ("layers", "cells"):
        subs = config.get(key)
        if isinstance(subs, list):
            out += [(key, s) for s in subs if isinstance(s, dict)]
    return out


def walk_layers(model_config: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(name, class, config) of every layer, cell and wrapped layer, depth first."""
    if not isinstance(model_config, dict):
        return
    cls = model_config.get("class_name")
    config = model_config.get("config")
    if isinstance(config, list):  # Keras 1/2.0-era Sequential: a bare list of layers
        config = {"layers": config}
    if not isinstance(config, dict):
        config = {}
    name = config.get("name") or model_config.get("name") or "?"
    if isinstance(cls, str):
        yield str(name), cls, config
    for _, sub in _sub_layers(config):
        yield from walk_layers(sub)


# Classes tfjs-layers 4.22 registers and loads, whose call() then fails on a model's
# input ("x must be rank 3 or 4, but got rank 1", "expected x to have shape [null,7]").
_FAIL_WHEN_RUN = frozenset({"CategoryEncoding", "CenterCrop", "RandomWidth", "Resizing"})


def activation_problems(config: Mapping[str, Any]) -> list[str]:
    """Activation names in ``config`` tfjs 4.22 does not know (it camelCases the name, as
    every config string, and looks it up among its registered activations)."""
    known = compat.registered_activations()
    return [
        f"{key}='{value}' does not exist in TensorFlow.js 4.22"
        for key in translate.ACTIVATION_KEYS
        for value in [config.get(key)]
        if isinstance(value, str) and fields.to_camel(value) not in known
    ]


def behaviour_problems(cls: str, config: Mapping[str, Any]) -> list[str]:
    """Config values tfjs-layers 4.22 accepts at load but then rejects or computes
    otherwise than Keras (read from its layer sources)."""
    found = activation_problems(config)
    if cls in _FAIL_WHEN_RUN:
        found.append("TensorFlow.js 4.22 loads this preprocessing layer but fails when running it")
    alpha = config.get("alpha", 1.0)
    if cls == "ELU" and isinstance(alpha, (int, float)) and float(alpha) != 1.0:
        found.append(f"alpha={alpha!r} is not supported by TensorFlow.js 4.22 (only 1.0)")
    if config.get("padding") == "causal":
        found.append("padding='causal' is not implemented in TensorFlow.js 4.22")
    interpolation = config.get("interpolation")
    if cls == "UpSampling2D" and interpolation not in (None, "nearest"):
        found.append(
            f"interpolation={interpolation!r} is computed differently by TensorFlow.js 4.22 "
            "(other pixel centers)"
        )
    return found


def class_problems(model_config: Any) -> list[Problem]:
    """Classes tfjs does not register, config values its constructors reject, and
    config fields it would ignore although they change inference (``fields``)."""
    known = compat.registered_classes()
    found: list[Problem] = []
    for name, cls, config in walk_layers(model_config):
        if cls not in known:
            found.append(Problem(name, cls, "class is not registered in TensorFlow.js 4.22"))
            continue
        if cls == "Identity":  # registered, but as an initializer (translate rewrites the layer)
            found.append(
                Problem(
                    name, cls, "TensorFlow.js 4.22 registers 'Identity' as an initializer, not as a layer"
                )
            )
            continue
        found += [Problem(name, cls, reason) for reason in behaviour_problems(cls, config)]
        if cls in ("GRU", "GRUCell") and config.get("reset_after"):
            # tfjs-layers' GRUCell constructor throws on resetAfter (recurrent.ts).
            found.append(Problem(name, cls, "reset_after=True is not supported by TensorFlow.js 4.22"))
        ignored = [f for f in fields.unsupported_fields(cls, config) if not f.startswith("reset_after=")]
        if ignored:
            found.append(
                Problem(
                    name, cls, f"TensorFlow.js 4.22 ignores {', '.join(ignored)}, which changes the result"
                )
            )
    return found


# Layers named per (class, reason) in a refusal; the rest are counted. A published
# architecture repeats one problem dozens of times (MobileNetV3's TFOpLambda layers).
_NAMED_LAYERS = 3


def _grouped(problems: Sequence[Problem]) -> list[str]:
    """One text per (class, reason), in first-seen order, naming up to three layers."""
    groups: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        groups.setdefault((p.cls, p.reason), []).append(p.layer)
    out = []
    for (cls, reason), layers in groups.items():
        if len(layers) == 1:
            out.append(str(Problem(layers[0], cls, reason)))
            continue
        named = ", ".join(f"'{n}'" for n in layers[:_NAMED_LAYERS])
        more = f" and {len(layers) - _NAMED_LAYERS} more" if len(layers) > _NAMED_LAYERS else ""
        out.append(f"layers {named}{more} ({cls}): {reason}")
    return out


def refusal_text(problems: Sequence[Problem]) -> str:
    """The one-line conversion error for ``problems`` (a problem many layers share is
    stated once)."""
    return (
        "TensorFlow.js 4.22 cannot load or would not reproduce this layers model: "
        + "; ".join(_grouped(problems))
        + f"; {GRAPH_HINT}"
    )
