"""A conversion-time mirror of ``tf.loadLayersModel`` in TensorFlow.js 4.22.

tfjs-layers refuses a model at load time when a layer class is not registered
(``data/tfjs_layers_classes.json``), when a layer's config carries something its
constructor rejects (``GRU(reset_after=True)``), and when the weight manifest and the
variables the layers create do not pair up one to one ("Provided weight data has no
target variable", "N of M weights are not set"). A converter that exits 0 must not
write such a model, so every layers conversion runs ``check_model`` -- pure Python on
the config and the weight names/shapes, no Node -- and refuses with one line naming
the layer and the alternative (the graph format).

The weight pairing follows ``Container.loadWeights``: a provided name matches a
variable's scoped name (``dense/kernel``) or, failing that, the name with its
second-to-last component removed (``lstm/lstm_cell/kernel`` -> ``lstm/kernel``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from tfjsconv.errors import ConversionError
from tfjsconv.layers import compat, fields, keras3, translate

GRAPH_HINT = "convert with --output_format=tfjs_graph_model instead"

Shape = Tuple[Optional[int], ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason tfjs-layers 4.22 would refuse the model, tied to a layer."""

    layer: str
    cls: str
    reason: str

    def __str__(self) -> str:
        return f"layer '{self.layer}' ({self.cls}): {self.reason}"


def _sub_layers(config: Mapping[str, Any]) -> List[Tuple[str, Any]]:
    """(key, serialized layer) pairs a layer config nests (wrappers, RNN cells)."""
    out: List[Tuple[str, Any]] = []
    for key in ("layer", "cell", "forward_layer", "backward_layer"):
        if isinstance(config.get(key), dict):
            out.append((key, config[key]))
    for key in ("layers", "cells"):
        subs = config.get(key)
        if isinstance(subs, list):
            out += [(key, s) for s in subs if isinstance(s, dict)]
    return out


def walk_layers(model_config: Any) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
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


def activation_problems(config: Mapping[str, Any]) -> List[str]:
    """Activation names in ``config`` tfjs 4.22 does not know (it camelCases the name, as
    every config string, and looks it up among its registered activations)."""
    known = compat.registered_activations()
    return [
        f"{key}='{value}' does not exist in TensorFlow.js 4.22"
        for key in translate.ACTIVATION_KEYS
        for value in [config.get(key)]
        if isinstance(value, str) and fields.to_camel(value) not in known
    ]


def behaviour_problems(cls: str, config: Mapping[str, Any]) -> List[str]:
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


def class_problems(model_config: Any) -> List[Problem]:
    """Classes tfjs does not register, config values its constructors reject, and
    config fields it would ignore although they change inference (``fields``)."""
    known = compat.registered_classes()
    found: List[Problem] = []
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


# The loader's second chance: drop the second-to-last name component.
def loader_alias(name: str) -> str:
    parts = name.split("/")
    return "/".join(parts[:-2] + parts[-1:]) if len(parts) >= 2 else name


def _as_tuple(value: Any) -> Optional[Tuple[int, ...]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _dims(cls: str, config: Mapping[str, Any], rank: int) -> Dict[str, Shape]:
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


def created_variables(name: str, cls: str, config: Mapping[str, Any]) -> Optional[Dict[str, Shape]]:
    """Scoped variable name -> known dims for what tfjs creates for this layer, or None
    when the class's variables are not modelled here (then its weights are not checked)."""
    if cls in keras3.MODEL_CLASSES:
        out: Dict[str, Shape] = {}
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


def leaf_layer_names(name: str, cls: str, config: Mapping[str, Any]) -> List[str]:
    """First weight-name components a layer's variables use: nested models' weights
    are named after their inner layers, not after the model."""
    if cls not in keras3.MODEL_CLASSES:
        return [name]
    out: List[str] = []
    for lname, lcls, lcfg in keras3.layer_configs({"config": config}):
        out += leaf_layer_names(lname, lcls, lcfg)
    return out


def weight_problems(model_config: Any, weights: Sequence[Tuple[str, Sequence[int]]]) -> List[Problem]:
    """Pair the manifest with the variables tfjs would create, as ``loadWeights`` does."""
    if not isinstance(model_config, dict):
        return []
    layers = (
        keras3.layer_configs(model_config) if model_config.get("class_name") in keras3.MODEL_CLASSES else []
    )
    expected: Dict[str, Tuple[str, str, Shape]] = {}  # scoped name -> (layer, class, dims)
    unchecked: Dict[str, Tuple[str, str]] = {}  # first name component -> (layer, class)
    for name, cls, cfg in layers:
        created = created_variables(name, cls, cfg)
        if created is None:
            for leaf in leaf_layer_names(name, cls, cfg):
                unchecked[leaf] = (name, cls)
            continue
        for scoped, dims in created.items():
            expected[scoped] = (name, cls, dims)
    found: List[Problem] = []
    unset = dict(expected)
    for wname, shape in weights:
        target = wname if wname in unset else loader_alias(wname)
        if target in unset:
            layer, cls, dims = expected[target]
            del unset[target]
            if dims and (
                len(dims) != len(shape) or any(d is not None and d != s for d, s in zip(dims, shape))
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
    by_layer: Dict[Tuple[str, str], List[str]] = {}
    for scoped, (layer, cls, _) in unset.items():
        by_layer.setdefault((layer, cls), []).append(scoped)
    for (layer, cls), names in sorted(by_layer.items()):
        found.append(Problem(layer, cls, f"no weight data for {', '.join(sorted(names))}"))
    return found


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
_MaskState = Tuple[bool, Optional[str]]  # (carries a mask, origin of zeroed-vs-repeated steps)


def _mask_step(
    name: str,
    cls: str,
    config: Mapping[str, Any],
    masked: bool,
    taint: Optional[str],
    origins: Dict[str, str],
    found: List[Problem],
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


def _inbound_layers(layer: Mapping[str, Any]) -> List[str]:
    names: List[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int):
            names.append(x[0])
        elif isinstance(x, list):
            for item in x:
                walk(item)

    walk(layer.get("inbound_nodes") or [])
    return names


def mask_problems(model_config: Any) -> List[Problem]:
    """Where masked timesteps hold different values in tfjs than in Keras and something
    reads them (top-level Sequential/Functional models; nested models are not traced)."""
    if not isinstance(model_config, dict) or model_config.get("class_name") not in keras3.MODEL_CLASSES:
        return []
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers") or []
    found: List[Problem] = []
    origins: Dict[str, str] = {}
    state: Dict[str, _MaskState] = {}
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


def _out_rank(cls: str, config: Mapping[str, Any], rank: Optional[int]) -> Optional[int]:
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


def batch_norm_problems(model_config: Any) -> List[Problem]:
    """BatchNormalization over another axis than the last: tfjs-layers reshapes its
    statistics to broadcast, but the cpu FusedBatchNorm kernel cycles through them along
    the flattened input as if they were on the last axis -- wrong values. Only judged where
    the input rank follows from the config (top-level Sequential/Functional models)."""
    if not isinstance(model_config, dict) or model_config.get("class_name") not in keras3.MODEL_CLASSES:
        return []
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers") or []
    functional = model_config.get("class_name") != "Sequential"
    ranks: Dict[str, Optional[int]] = {}
    found: List[Problem] = []
    rank: Optional[int] = None
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


def check_model(model_topology: Any, weights: Sequence[Tuple[str, Sequence[int]]]) -> List[Problem]:
    """Every reason tfjs-layers 4.22 would refuse this model (empty: it loads).

    ``model_topology`` is a layers model's ``modelTopology`` (or a bare model config);
    ``weights`` the manifest's (name, shape) pairs.
    """
    if not isinstance(model_topology, dict):
        return []
    config = model_topology.get("model_config", model_topology)
    found = class_problems(config) + batch_norm_problems(config)
    if not found:  # weight pairing is meaningless when the layers cannot be built
        found += weight_problems(config, weights) + mask_problems(config)
    return found


def check_model_json(model_json: Mapping[str, Any]) -> List[Problem]:
    """``check_model`` on a parsed layers ``model.json`` (its topology and manifest)."""
    weights = [
        (str(w.get("name")), tuple(w.get("shape") or ()))
        for group in model_json.get("weightsManifest") or []
        for w in group.get("weights") or []
    ]
    return check_model(model_json.get("modelTopology"), weights)


def refusal_text(problems: Sequence[Problem]) -> str:
    """The one-line conversion error for ``problems``."""
    return (
        "TensorFlow.js 4.22 cannot load or would not reproduce this layers model: "
        + "; ".join(str(p) for p in problems)
        + f"; {GRAPH_HINT}"
    )


def ensure_loadable(model_topology: Any, weights: Sequence[Tuple[str, Sequence[int]]]) -> None:
    """Raise a one-line ``ConversionError`` when tfjs-layers 4.22 would refuse the model."""
    problems = check_model(model_topology, weights)
    if problems:
        raise ConversionError(refusal_text(problems))
