"""Translate Keras 3 model configs and weight lists into Keras 2 (tfjs-layers) form.

tfjs-layers 4.22 and tf_keras only understand Keras 2 configs: an InputLayer with
``batch_input_shape``, plain dtype strings, ``{class_name, config}`` objects and
functional ``inbound_nodes`` as ``[[layer, node_index, tensor_index, kwargs], ...]``.
The reference converter copies Keras 3 configs verbatim, which tfjs then refuses to
load ("An InputLayer should be passed either a batchInputShape or an inputShape").

Keras 3 stores a layer's variables positionally (``vars/0``, ``vars/1``, or ``dw/kernel``
for what Keras 2 called ``dw/depthwise_kernel``), so weight names are rebuilt from the
layer class: ``WEIGHT_LAYOUTS`` lists, per class, the Keras 2 names in Keras 3's
variable creation order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfjsconv.errors import ConversionError
from tfjsconv.layers import check_classes, compat, framework_objects

MODEL_CLASSES = ("Sequential", "Functional", "Model")
# Packages of published Keras 3 models (Keras imports their classes' modules itself).
KERAS_ECOSYSTEM = ("keras_hub", "keras_cv", "keras_nlp")

# Serialization bookkeeping that Keras 2 readers do not know.
_DROP_KEYS = frozenset({"module", "registered_name", "build_config", "compile_config", "shared_object_id"})

# Keras-3-only layer/initializer arguments: dropped when they hold the value that
# means "behave like Keras 2", refused otherwise (Keras 2 cannot express them).
_K3_ONLY_DEFAULTS: Mapping[str, tuple[Any, ...]] = {
    "quantization_config": (None,),
    "lora_rank": (None, 0),
    "lora_alpha": (None,),
    "optional": (False,),
    "rms_scaling": (False,),
    "input_axes": (None,),
    "output_axes": (None,),
    "synchronized": (False,),
}
# Activations Keras 3 redefined under a Keras 2 name: what Keras 3 computes, versus what
# TensorFlow.js (and Keras 2) compute under that name -- refused, no tfjs equivalent.
_ACTIVATION_KEYS = ("activation", "recurrent_activation")
_K3_CHANGED_ACTIVATIONS: Mapping[str, str] = {
    "hard_sigmoid": "relu6(x + 3) / 6, while TensorFlow.js 4.22's hard_sigmoid is Keras 2's "
    "clip(0.2 * x + 0.5, 0, 1)",
}
# Keras-3-only arguments that only pick an implementation; always safe to drop.
_K3_IMPL_KEYS = frozenset({"use_cudnn"})

_DTYPE_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy", "Policy")

_RNN_CELLS = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}


def _kernel_bias(cfg: Mapping[str, Any]) -> list[str]:
    return ["kernel", "bias"] if cfg.get("use_bias", True) else ["kernel"]


def _depthwise(cfg: Mapping[str, Any]) -> list[str]:
    return ["depthwise_kernel", "bias"] if cfg.get("use_bias", True) else ["depthwise_kernel"]


def _separable(cfg: Mapping[str, Any]) -> list[str]:
    names = ["depthwise_kernel", "pointwise_kernel"]
    return names + ["bias"] if cfg.get("use_bias", True) else names


def _batch_norm(cfg: Mapping[str, Any]) -> list[str]:
    names = ["gamma"] if cfg.get("scale", True) else []
    names += ["beta"] if cfg.get("center", True) else []
    return names + ["moving_mean", "moving_variance"]


def _layer_norm(cfg: Mapping[str, Any]) -> list[str]:
    names = ["gamma"] if cfg.get("scale", True) else []
    return names + (["beta"] if cfg.get("center", True) else [])


def _rnn(cell: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def names(cfg: Mapping[str, Any]) -> list[str]:
        base = ["kernel", "recurrent_kernel"] + (["bias"] if cfg.get("use_bias", True) else [])
        return [f"{cell}/{n}" for n in base]

    return names


def _wrapped(cfg: Mapping[str, Any], key: str = "layer") -> tuple[str, list[str]]:
    inner = cfg[key]
    layout = WEIGHT_LAYOUTS.get(inner["class_name"])
    if layout is None:
        raise ConversionError(
            f"wrapped layer class {inner['class_name']!r} is not supported "
            f"(supported: {', '.join(sorted(WEIGHT_LAYOUTS))})"
        )
    return inner["config"]["name"], layout(inner["config"])


def _time_distributed(cfg: Mapping[str, Any]) -> list[str]:
    """Keras 2 names the wrapped layer's weights after the wrapper: ``td/kernel``."""
    return _wrapped(cfg)[1]


def _bidirectional(cfg: Mapping[str, Any]) -> list[str]:
    """Forward then backward: ``bidi/forward_lstm/lstm_cell/kernel`` ..."""
    fname, fnames = _wrapped(cfg)
    if cfg.get("backward_layer"):
        bname, bnames = _wrapped(cfg, "backward_layer")
    else:
        bname, bnames = fname, fnames
    return [f"forward_{fname}/{n}" for n in fnames] + [f"backward_{bname}/{n}" for n in bnames]


# class name -> config -> Keras 2 weight names (relative to the layer), in Keras 3's
# variable order.
WEIGHT_LAYOUTS: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Dense": _kernel_bias,
    "Conv1D": _kernel_bias,
    "Conv2D": _kernel_bias,
    "Conv3D": _kernel_bias,
    "Conv1DTranspose": _kernel_bias,
    "Conv2DTranspose": _kernel_bias,
    "Conv3DTranspose": _kernel_bias,
    "DepthwiseConv1D": _depthwise,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Embedding": lambda cfg: ["embeddings"],
    "PReLU": lambda cfg: ["alpha"],
    **{cls: _rnn(cell) for cls, cell in _RNN_CELLS.items()},
    "TimeDistributed": _time_distributed,
    "Bidirectional": _bidirectional,
}

# Sub-objects of a Keras 3 layer in the ``.keras`` weights file, in Keras 2 weight order.
CHILD_ORDER = ("cell", "layer", "forward_layer", "backward_layer")

# Arguments Keras 3 renamed: class -> {keras 3 name: keras 2 name}.
_RENAMED_ARGS: Mapping[str, Mapping[str, str]] = {
    "LeakyReLU": {"negative_slope": "alpha"},
}


def is_keras3_version(keras_version: str | None) -> bool:
    return bool(keras_version) and str(keras_version).split(".")[0] == "3"


def _is_serialized_object(obj: Mapping[str, Any]) -> bool:
    return "class_name" in obj and "config" in obj


def check_safe(obj: Mapping[str, Any], where: str, allow_unsafe: bool) -> None:
    """Refuse custom objects and Lambda code unless the user opted in."""
    if allow_unsafe:
        return
    module = obj.get("module")
    cls = obj.get("class_name")
    registered = obj.get("registered_name")
    custom = (
        cls in ("Lambda", "function", "__lambda__")
        or (module is not None and module != "keras" and not str(module).startswith("keras."))
        or (registered not in (None, cls))
    ) and not framework_objects.is_framework_object(obj)
    if custom:
        raise ConversionError(
            f"{where} uses custom or code-carrying Keras object {cls!r}"
            f" (module {module!r}); pass allow_unsafe_deserialization to convert it anyway"
        )


def clean_value(value: Any, where: str, allow_unsafe: bool) -> Any:
    """Recursively turn Keras 3 serialized values into their Keras 2 spelling."""
    if isinstance(value, list):
        return [clean_value(v, where, allow_unsafe) for v in value]
    if not isinstance(value, dict):
        return value
    if _is_serialized_object(value):
        check_safe(value, where, allow_unsafe)
        if value["class_name"] in _DTYPE_POLICY_CLASSES and isinstance(value["config"], dict):
            return value["config"].get("name", "float32")
        if value["class_name"].startswith("Quantized"):
            raise ConversionError(f"{where}: quantized Keras 3 dtype policies are not supported")
        if value["class_name"] == "__keras_tensor__":
            history = value["config"]["keras_history"]
            return [history[0], history[1], history[2]]
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _DROP_KEYS or key in _K3_IMPL_KEYS:
            continue
        if key in _K3_ONLY_DEFAULTS:
            if any(item == d and type(item) is type(d) for d in _K3_ONLY_DEFAULTS[key]):
                continue
            raise ConversionError(
                f"{where}: Keras 3 option {key}={item!r} has no Keras 2 / TensorFlow.js equivalent"
            )
        if key in _ACTIVATION_KEYS and item in _K3_CHANGED_ACTIVATIONS:
            raise ConversionError(
                f"{where}: Keras 3's {key}={item!r} is {_K3_CHANGED_ACTIVATIONS[item]}; "
                "convert with --output_format=tfjs_graph_model instead"
            )
        out[key] = clean_value(item, where, allow_unsafe)
    return out


def _flatten_tensors(args: Any, where: str) -> list[list[Any]]:
    """Keras tensor references in positional call args, in order."""
    found: list[list[Any]] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            h = x["config"]["keras_history"]
            found.append([h[0], h[1], h[2]])
        elif isinstance(x, (list, tuple)):
            for item in x:
                walk(item)
        elif x is not None:
            raise ConversionError(
                f"{where}: non-tensor positional call argument {x!r} cannot be expressed "
                "in a Keras 2 / TensorFlow.js layers config; convert with "
                "--output_format=tfjs_graph_model instead"
            )

    walk(args)
    return found


def translate_inbound_nodes(nodes: Sequence[Any], where: str, allow_unsafe: bool) -> list[Any]:
    """Keras 3 ``[{args, kwargs}]`` -> Keras 2 ``[[[layer, node, tensor, kwargs], ...]]``."""
    out: list[Any] = []
    for node in nodes:
        if not isinstance(node, dict):  # already Keras 2 style
            out.append(node)
            continue
        tensors = _flatten_tensors(node.get("args", []), where)
        kwargs = {
            k: clean_value(v, where, allow_unsafe)
            for k, v in (node.get("kwargs") or {}).items()
            if v is not None
        }
        out.append([t + [kwargs] for t in tensors])
    return out


def _io_layers(value: Any) -> Any:
    """Keras 3 writes a single model input/output as a flat ``[name, 0, 0]``."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    return value


def _keras2_bidirectional(config: dict[str, Any]) -> dict[str, Any]:
    """Keras 3 serializes the *built* forward/backward layers (``forward_x``,
    ``backward_x``); Keras 2 and tfjs expect the wrapped layer ``x`` and derive both
    directions from it (a separate backward config is only for a custom one)."""
    config = dict(config)
    forward = dict(config["layer"])
    fcfg = dict(forward["config"])
    backward = config.get("backward_layer")
    if backward and str(fcfg.get("name", "")).startswith("forward_"):
        base = fcfg["name"][len("forward_") :]
        bcfg = dict(backward["config"])
        mirror = (
            backward.get("class_name") == forward.get("class_name")
            and bcfg.get("name") == "backward_" + base
            and bool(bcfg.get("go_backwards")) != bool(fcfg.get("go_backwards"))
            and {k: v for k, v in bcfg.items() if k not in ("name", "go_backwards")}
            == {k: v for k, v in fcfg.items() if k not in ("name", "go_backwards")}
        )
        if mirror:
            fcfg["name"] = base
            forward["config"] = fcfg
            config["layer"] = forward
            del config["backward_layer"]
    return config


def translate_layer(layer: Mapping[str, Any], allow_unsafe: bool, functional: bool) -> dict[str, Any]:
    cls = layer["class_name"]
    name = layer.get("name") or layer.get("config", {}).get("name")
    where = f"layer {name!r} ({cls})"
    check_safe(layer, where, allow_unsafe)
    if cls in MODEL_CLASSES:
        config = translate_model(layer, allow_unsafe)["config"]
    else:
        config = clean_value(layer["config"], where, allow_unsafe)
    if cls == "Bidirectional" and isinstance(config, dict):
        config = _keras2_bidirectional(config)
    renames = dict(_RENAMED_ARGS.get(cls, {}))
    if cls == "InputLayer":
        renames["batch_shape"] = "batch_input_shape"
    if renames and isinstance(config, dict):
        config = {renames.get(k, k): v for k, v in config.items()}
    out: dict[str, Any] = {"class_name": cls, "config": config}
    if functional:
        out["name"] = name
        out["inbound_nodes"] = translate_inbound_nodes(layer.get("inbound_nodes", []), where, allow_unsafe)
    return out


def translate_model(model: Mapping[str, Any], allow_unsafe: bool) -> dict[str, Any]:
    """A Keras 3 ``{class_name, config}`` model -> the Keras 2 spelling tfjs loads."""
    cls = model["class_name"]
    cfg = model["config"]
    if cls not in MODEL_CLASSES:
        package = str(model.get("module") or "").split(".", 1)[0]
        if package in KERAS_ECOSYSTEM:  # a published model class: its graph converts
            raise ConversionError(
                f"model class {cls!r} ({package}) is a subclassed model, not Sequential or Functional: "
                "tfjs-layers has no such class; convert it to tfjs_graph_model"
            )
        raise ConversionError(
            f"model class {cls!r} is a subclassed model, not Sequential or Functional: tfjs-layers cannot load it"
        )
    if cls == "Sequential":
        layers = [translate_layer(layer, allow_unsafe, functional=False) for layer in cfg["layers"]]
        return {"class_name": "Sequential", "config": {"name": cfg.get("name"), "layers": layers}}
    layers = [translate_layer(layer, allow_unsafe, functional=True) for layer in cfg["layers"]]
    shifted = {layer["name"] for layer in layers if _has_own_node(layer)}
    for layer in layers:
        layer["inbound_nodes"] = [[_shift(ref, shifted) for ref in node] for node in layer["inbound_nodes"]]
    config = {
        "name": cfg.get("name"),
        "trainable": cfg.get("trainable", True),
        "layers": layers,
        "input_layers": [_shift(r, shifted) for r in _io_layers(cfg["input_layers"])],
        "output_layers": [_shift(r, shifted) for r in _io_layers(cfg["output_layers"])],
    }
    return {"class_name": "Functional", "config": config}


def _has_own_node(layer: Mapping[str, Any]) -> bool:
    """Keras 2 / tfjs give a built nested model an inbound node of its own (node 0,
    linking its inputs to its outputs), so its calls in the outer model start at
    node 1; Keras 3 numbers only the calls. Unbuilt Sequentials have no such node."""
    cls = layer["class_name"]
    if cls in ("Functional", "Model"):
        return True
    if cls == "Sequential":
        inner = layer["config"].get("layers") or []
        return bool(inner) and inner[0]["class_name"] == "InputLayer"
    return False


def _shift(ref: list[Any], shifted: set) -> list[Any]:
    if ref and ref[0] in shifted:
        return [ref[0], ref[1] + 1] + list(ref[2:])
    return ref


def layer_configs(model: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(name, class_name, config) of the model's top-level layers, in config order."""
    cfg = model["config"]
    layers = cfg if isinstance(cfg, list) else cfg.get("layers", [])
    return [
        (layer.get("name") or layer["config"]["name"], layer["class_name"], layer["config"])
        for layer in layers
    ]


def _nested_model_names(config: Mapping[str, Any]) -> list[str]:
    """A nested model's weights: its layers in config order; Keras 2 does not prefix
    them with the nested model's name (``inner_dense/kernel``)."""
    names: list[str] = []
    for name, cls, cfg in layer_configs({"config": config}):
        if cls in MODEL_CLASSES:
            names += _nested_model_names(cfg)
        elif cls in WEIGHT_LAYOUTS:
            names += [f"{name}/{n}" for n in WEIGHT_LAYOUTS[cls](cfg)]
    return names


def keras2_weight_names(layer_name: str, cls: str, config: Mapping[str, Any], count: int) -> list[str]:
    """Keras 2 names for a Keras 3 layer's ``count`` variables (in Keras 3 order)."""
    if count == 0:
        return []
    if cls in MODEL_CLASSES:
        names = _nested_model_names(config)
        if len(names) != count:
            raise ConversionError(
                f"nested model {layer_name!r} has {count} weights in the file but its layers "
                f"account for {len(names)}; a layer class in it is not supported "
                f"(supported: {', '.join(sorted(WEIGHT_LAYOUTS))})"
            )
        return names
    layout = WEIGHT_LAYOUTS.get(cls)
    if layout is None and cls not in compat.registered_classes():
        raise ConversionError(
            check_classes.refusal_text(
                check_classes.class_problems({"class_name": cls, "config": {**config, "name": layer_name}})
            )
        )
    if layout is None:
        raise ConversionError(
            f"cannot name the {count} Keras 3 weights of layer {layer_name!r}: layer class "
            f"{cls!r} is not supported (supported: {', '.join(sorted(WEIGHT_LAYOUTS))})"
        )
    names = layout(config)
    if len(names) != count:
        raise ConversionError(
            f"layer {layer_name!r} ({cls}) has {count} weights in the file but its config "
            f"implies {len(names)} ({', '.join(names)})"
        )
    return [f"{layer_name}/{n}" for n in names]
