"""Initializers, regularizers and constraints the frameworks themselves define.

They are not user code: Keras and tf_keras serialize their own under a ``keras.*``
module, and TensorFlow's own initializers (``tf.constant_initializer``, used for the
biases of ``tf_keras.applications.EfficientNetV2*``) under ``tensorflow.python.ops.*``.
A module/class pair of this fixed table is accepted by the safety check
(``keras3.check_safe``) -- nothing is imported, the names are only compared -- and
anything else outside ``keras.*`` is still refused as custom.

For tfjs-layers, which knows only its own classes (``data/tfjs_layers_classes.json``),
``for_tfjs`` spells such an object as the tfjs class of the same name. These objects
only make a model's initial or trained values: a loaded model's weights overwrite what
an initializer made, and regularizers only act in training, so an initializer tfjs
cannot build (a non-scalar ``Constant``, a class tfjs lacks) becomes ``Zeros`` and such
a regularizer is dropped -- inference is unchanged. Constraints are dropped always:
Keras applies them after training steps only, but tfjs-layers applies a variable's
constraint whenever it is written (``LayerVariable.write``), loading included, so a
``unit_norm`` kernel would be renormalized at load and the model compute otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfjsconv.layers import compat

_TF_INITIALIZERS = frozenset(
    {
        "Constant",
        "Zeros",
        "Ones",
        "RandomUniform",
        "RandomNormal",
        "TruncatedNormal",
        "VarianceScaling",
        "Orthogonal",
        "Identity",
        "GlorotUniform",
        "GlorotNormal",
    }
)

# module -> classes it defines that a model config may name (TensorFlow's own).
FRAMEWORK_CLASSES: Mapping[str, frozenset[str]] = {
    "tensorflow.python.ops.init_ops_v2": _TF_INITIALIZERS,
    "tensorflow.python.ops.init_ops": _TF_INITIALIZERS,
}

# Keras spellings of classes tfjs registers under another name.
_TFJS_NAMES: Mapping[str, str] = {"LecunNormal": "LeCunNormal", "LecunUniform": "LeCunUniform"}

_KINDS = ("_initializer", "_regularizer", "_constraint")


def is_framework_object(obj: Mapping[str, Any]) -> bool:
    """Whether a serialized ``{module, class_name, ...}`` is one of TensorFlow's own."""
    cls = obj.get("class_name")
    registered = obj.get("registered_name")
    classes = FRAMEWORK_CLASSES.get(str(obj.get("module")), frozenset())
    return cls in classes and registered in (None, cls)


def _is_keras_or_framework(obj: Mapping[str, Any]) -> bool:
    module = obj.get("module")
    keras = module is None or module == "keras" or str(module).startswith("keras.")
    return (keras and obj.get("registered_name") in (None, obj.get("class_name"))) or is_framework_object(obj)


def for_tfjs(key: str, value: Any) -> Any:
    """A config's ``*_initializer``/``*_regularizer``/``*_constraint`` value as tfjs-layers
    4.22 builds it (see the module docstring); anything else is returned unchanged."""
    kind = next((k for k in _KINDS if key.endswith(k)), None)
    if kind == "_constraint":
        return None
    if kind is None or not isinstance(value, dict) or not _is_keras_or_framework(value):
        return value
    name = value.get("class_name")
    cls = _TFJS_NAMES.get(str(name), name)
    raw = value.get("config")
    config: dict[str, Any] = raw if isinstance(raw, dict) else {}
    known = cls in compat.registered_classes()
    if kind == "_regularizer":
        return value if known else None
    if not known or (cls == "Constant" and not isinstance(config.get("value"), (int, float))):
        return {"class_name": "Zeros", "config": {}}
    if cls == name and not is_framework_object(value):
        return value  # already what tfjs builds: kept as written
    keep = {k: v for k, v in config.items() if k != "dtype"}  # TF 1's initializers carry it
    return {"class_name": cls, "config": keep}


_KERAS_NAMES: Mapping[str, str] = {tfjs: keras for keras, tfjs in _TFJS_NAMES.items()}


def for_keras(value: Any) -> Any:
    """A model config with tfjs's spellings of Keras initializers (``LeCunNormal``, as
    ``for_tfjs`` writes them) spelled as Keras's, so a layers model goes back to Keras."""
    if isinstance(value, list):
        return [for_keras(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key.endswith("_initializer") and isinstance(item, dict) and item.get("class_name") in _KERAS_NAMES:
            item = {**item, "class_name": _KERAS_NAMES[item["class_name"]]}
        out[key] = for_keras(item)
    return out
