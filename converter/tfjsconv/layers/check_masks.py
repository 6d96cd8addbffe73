"""The mask checker: where tfjs-layers 4.22 repeats a masked timestep Keras zeroes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfjsconv.layers import keras3
from tfjsconv.layers.check_classes import Problem

# Mask flow. With a mask and return_sequences=True, Keras's Bidirectional (and a Keras 3
# RNN with zero_output_for_mask=True) outputs zeros at masked timesteps; tfjs-layers'
# rnn() repeats the previous output there instead. The difference is invisible to a
# recurrent layer consuming the same mask (it skips masked steps) and to the loss, but
# not to anything else that reads those values, nor in the model's outputs.
_RNNS = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM2D"})
# Layers that carry the mask through and compute each timestep on its own.
_MASK_PASS = frozenset(
    {
        "Activation",
        "ActivityRegularization",
        "AlphaDropout",
        "BatchNormalization",
        "Dense",
        "Dropout",
        "ELU",
        "GaussianDropout",
        "GaussianNoise",
        "LayerNormalization",
        "LeakyReLU",
        "PReLU",
        "ReLU",
        "Softmax",
        "SpatialDropout1D",
        "ThresholdedReLU",
        "TimeDistributed",
        "Add",
        "Average",
        "Concatenate",
        "Maximum",
        "Minimum",
        "Multiply",
    }
)
_MaskState = tuple[bool, str | None]  # (carries a mask, origin of zeroed-vs-repeated steps)


def _mask_step(
    name: str,
    cls: str,
    config: Mapping[str, Any],
    masked: bool,
    taint: str | None,
    origins: dict[str, str],
    found: list[Problem],
) -> _MaskState:
    if cls == "Embedding":
        return bool(config.get("mask_zero")), None
    if cls == "Bidirectional":
        inner: Mapping[str, Any] = config["layer"] if isinstance(config.get("layer"), dict) else {}
        seqs = bool((inner.get("config") or {}).get("return_sequences"))
        if masked and seqs:
            origins[name] = cls
            return True, name
        return masked and seqs, None
    if cls in _RNNS:
        seqs = bool(config.get("return_sequences"))
        if masked and seqs and config.get("zero_output_for_mask"):
            origins[name] = cls
            return True, name
        return masked and seqs, None
    if cls == "Masking":
        if taint:
            found.append(_mask_problem(taint, origins[taint], f"layer '{name}' ({cls}) reads them"))
        return True, None
    if cls in _MASK_PASS:
        return masked, taint
    if taint:
        found.append(_mask_problem(taint, origins[taint], f"layer '{name}' ({cls}) reads them"))
    return False, None


def _mask_problem(origin: str, cls: str, consumer: str) -> Problem:
    return Problem(
        origin,
        cls,
        "with a mask and return_sequences=True Keras outputs zeros at masked "
        f"timesteps where TensorFlow.js 4.22 repeats the last output, and {consumer}",
    )


def _inbound_layers(layer: Mapping[str, Any]) -> list[str]:
    names: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int):
            names.append(x[0])
        elif isinstance(x, list):
            for item in x:
                walk(item)

    walk(layer.get("inbound_nodes") or [])
    return names


def mask_problems(model_config: Any) -> list[Problem]:
    """Where masked timesteps hold different values in tfjs than in Keras and something
    reads them (top-level Sequential/Functional models; nested models are not traced)."""
    if not isinstance(model_config, dict) or model_config.get("class_name") not in keras3.MODEL_CLASSES:
        return []
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers") or []
    found: list[Problem] = []
    origins: dict[str, str] = {}
    state: dict[str, _MaskState] = {}
    masked, taint = False, None
    functional = model_config.get("class_name") != "Sequential"
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            continue
        cfg = layer["config"]
        name = str(layer.get("name") or cfg.get("name"))
        if functional:
            ins = [state.get(n, (False, None)) for n in _inbound_layers(layer)]
            masked = any(m for m, _ in ins)
            taint = next((t for _, t in ins if t), None)
        masked, taint = _mask_step(name, str(layer.get("class_name")), cfg, masked, taint, origins, found)
        state[name] = (masked, taint)
    if functional:
        outs = [r[0] for r in (config or {}).get("output_layers") or [] if isinstance(r, list) and r]
        tainted = sorted({t for t in (state[n][1] for n in outs if n in state) if t})
    else:
        tainted = [taint] if taint else []
    found += [_mask_problem(t, origins[t], "the model outputs them") for t in tainted]
    return sorted(set(found), key=str)
