# Generated from converter/tfjsconv/formats.py by tools/generate.py; do not edit.
# Pants runs plugins on its own interpreter, where tfjsconv is not installed.
"""The one home of the converter's formats, defaults and option rules, and their check.

Everything a build tool must know before running a conversion lives here as plain
data: the formats, which (input, output) pairs convert, the defaults, which options
apply to which formats, the action environment and the names of the outputs. The
Bazel rules, the Pants plugin and the setuptools hook all decide "accept or refuse"
with these tables and the messages of ``problem`` below:

* ``rules/private/formats.bzl`` is generated from this module (data only; the same
  algorithm is in ``rules/private/validate.bzl``);
* ``tools/pants_tfjs/pants_tfjs/formats.py`` is a generated copy of this file (Pants
  runs plugins on its own Python 3.9, where tfjsconv is not installed);
* the setuptools hook imports this module.

``tools/gen_formats.py`` writes both files; ``tests/python/test_formats_drift.py``
fails when they are stale, and checks every tool's verdicts over every pair x option.
So this module stays dependency-free and runs on Python 3.9.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

INPUT_FORMATS: tuple[str, ...] = (
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tf_frozen_model",
    "tf_hub",
    "tf_saved_model",
    "tfjs_layers_model",
)
OUTPUT_FORMATS: tuple[str, ...] = (
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tfjs_graph_model",
    "tfjs_layers_model",
)
# Outputs made of model.json + weight shards (the others are Keras files).
TFJS_OUTPUTS: tuple[str, ...] = ("tfjs_graph_model", "tfjs_layers_model")
# Inputs that are SavedModels (they take saved_model_tags).
SAVED_MODEL_INPUTS: tuple[str, ...] = ("keras_saved_model", "tf_hub", "tf_saved_model")

# What the reference infers when --output_format is omitted.
DEFAULT_OUTPUT_FORMAT: dict[str, str] = {
    "keras": "tfjs_layers_model",
    "keras_keras": "tfjs_layers_model",
    "keras_saved_model": "tfjs_layers_model",
    "tf_frozen_model": "tfjs_graph_model",
    "tf_hub": "tfjs_graph_model",
    "tf_saved_model": "tfjs_graph_model",
    "tfjs_layers_model": "keras",
}

# Every (input_format, output_format) pair that converts, sorted, with the converter
# function that does it (imported lazily by tfjsconv.api).
CONVERTERS: dict[tuple[str, str], str] = {
    ("keras", "tfjs_graph_model"): "tfjsconv.graph.keras_graph:keras_to_graph",
    ("keras", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_to_layers",
    ("keras_keras", "tfjs_graph_model"): "tfjsconv.graph.keras_graph:keras_to_graph",
    ("keras_keras", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_to_layers",
    ("keras_saved_model", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_saved_model_to_layers",
    ("tf_frozen_model", "tfjs_graph_model"): "tfjsconv.graph.convert:frozen_to_graph",
    ("tf_hub", "tfjs_graph_model"): "tfjsconv.graph.convert:hub_to_graph",
    ("tf_saved_model", "tfjs_graph_model"): "tfjsconv.graph.convert:saved_model_to_graph",
    ("tfjs_layers_model", "keras"): "tfjsconv.layers.convert:layers_to_keras_h5",
    ("tfjs_layers_model", "keras_keras"): "tfjsconv.layers.convert:layers_to_keras_keras",
    ("tfjs_layers_model", "keras_saved_model"): "tfjsconv.layers.convert:layers_to_keras_saved_model",
    ("tfjs_layers_model", "tfjs_graph_model"): "tfjsconv.chained:layers_to_graph",
    ("tfjs_layers_model", "tfjs_layers_model"): "tfjsconv.layers.convert:layers_to_layers",
}
SUPPORTED_PAIRS: tuple[tuple[str, str], ...] = tuple(sorted(CONVERTERS))

# Name of the main output inside a build tool's output directory, per output format.
MAIN_OUTPUT: dict[str, str] = {
    "keras": "model.h5",
    "keras_keras": "model.keras",
    "keras_saved_model": "saved_model",
    "tfjs_graph_model": "model.json",
    "tfjs_layers_model": "model.json",
}
MODEL_JSON = "model.json"

QUANTIZATION_DTYPES: tuple[str, ...] = ("float16", "uint8", "uint16")
# --quantize_budget: how the quantized model's outputs are compared with float32's
# (tfjsconv.quantize_search.metrics defines each), and the options only it takes.
ERROR_METRICS: tuple[str, ...] = ("max_abs", "max_rel", "top1")
DEFAULT_ERROR_METRIC = "max_abs"
BUDGET_OPTIONS: tuple[str, ...] = ("calibration_inputs", "error_metric", "quantization_report_dir")
DEFAULT_SHARD_SIZE_BYTES = 4 * 1024 * 1024

# The options every build tool exposes (Bazel attributes, Pants fields, setuptools
# keys), named like the converter's flags: name -> (kind, default). Kinds: int, bool,
# string, string_list, patterns (quantization: a list of fnmatch patterns, [] = unset),
# metadata (name -> JSON file).
OPTIONS: dict[str, tuple[str, Any]] = {
    "weight_shard_size_bytes": ("int", DEFAULT_SHARD_SIZE_BYTES),
    "quantize_float16": ("patterns", None),
    "quantize_uint8": ("patterns", None),
    "quantize_uint16": ("patterns", None),
    "metadata": ("metadata", None),
    "signature_name": ("string", None),
    "saved_model_tags": ("string_list", ["serve"]),
    "output_node_names": ("string_list", []),
    "strip_debug_ops": ("bool", True),
    "control_flow_v2": ("bool", False),
    "use_structured_outputs_names": ("bool", False),
    "split_weights_by_layer": ("bool", False),
    "skip_op_check": ("bool", False),
}

# Option rules, checked in this order; the first broken one is the error. Kinds:
#   positive: the value must be > 0;
#   required_for_inputs: the option must be set for these input formats;
#   inputs / outputs: a non-default value is refused unless the input / output format
#   is one of these.
CHECKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("weight_shard_size_bytes", "positive", ()),
    ("output_node_names", "required_for_inputs", ("tf_frozen_model",)),
    ("weight_shard_size_bytes", "outputs", TFJS_OUTPUTS),
    ("signature_name", "inputs", ("tf_hub", "tf_saved_model")),
    ("control_flow_v2", "outputs", ("tfjs_graph_model",)),
    ("quantize_float16", "outputs", TFJS_OUTPUTS),
    ("quantize_uint8", "outputs", TFJS_OUTPUTS),
    ("quantize_uint16", "outputs", TFJS_OUTPUTS),
    ("split_weights_by_layer", "outputs", ("tfjs_layers_model",)),
)

# The pinned environment of every conversion a build tool runs (Bazel actions, Pants
# processes): nothing from the user's shell, and everything that could change bytes.
ACTION_ENV: dict[str, str] = {
    "CUDA_VISIBLE_DEVICES": "-1",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
    "SOURCE_DATE_EPOCH": "315532800",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_DETERMINISTIC_OPS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TZ": "UTC",
}


def _either(formats: Sequence[str]) -> str:
    items = sorted(formats)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def is_set(name: str, value: Any) -> bool:
    """Whether ``value`` differs from the option's default; None, "" and [] mean unset."""
    if value is None or (isinstance(value, (str, list, tuple)) and len(value) == 0):
        return False
    default = OPTIONS[name][1]
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) != list(default)
    return bool(value != default)


def output_format_problem(input_format: str, output_format: str | None) -> tuple[str | None, str]:
    """(error message or None, resolved output format) for a format choice."""
    if input_format not in INPUT_FORMATS:
        return (f'unknown input_format "{input_format}"; choose one of: {", ".join(INPUT_FORMATS)}', "")
    out = output_format or DEFAULT_OUTPUT_FORMAT[input_format]
    if out not in OUTPUT_FORMATS:
        return (f'unknown output_format "{out}"; choose one of: {", ".join(OUTPUT_FORMATS)}', out)
    if (input_format, out) not in CONVERTERS:
        writes = ", ".join(o for i, o in SUPPORTED_PAIRS if i == input_format)
        return (
            f"unsupported input_format/output_format pair: {input_format} -> {out} "
            f"(from {input_format} the converter writes: {writes})",
            out,
        )
    return None, out


def budget_problem(output_format: str, values: Mapping[str, Any]) -> str | None:
    """The first reason the ``quantize_budget`` options are refused, or None.

    ``values`` maps quantize_budget (a float or None), the ``BUDGET_OPTIONS`` and the
    ``quantize_<dtype>`` options to the user's values.
    """
    budget = values.get("quantize_budget")
    if budget is None:
        for name in BUDGET_OPTIONS:
            if values.get(name):
                return f"{name} applies only with quantize_budget"
        return None
    if output_format not in TFJS_OUTPUTS:
        return (
            f"quantize_budget applies only to the {_either(TFJS_OUTPUTS)} output format, not {output_format}"
        )
    if not isinstance(budget, (int, float)) or not (0.0 <= budget < float("inf")):
        return f"quantize_budget must be a finite number >= 0, got {budget}"
    for dtype in QUANTIZATION_DTYPES:
        if is_set("quantize_" + dtype, values.get("quantize_" + dtype)):
            return f"quantize_budget chooses every weight's dtype; do not combine it with quantize_{dtype}"
    metric = values.get("error_metric")
    if metric and metric not in ERROR_METRICS:
        return f'unknown error_metric "{metric}"; choose one of: {", ".join(ERROR_METRICS)}'
    return None


def problem(input_format: str, output_format: str | None, values: Mapping[str, Any]) -> str | None:
    """The first reason the converter refuses these options, or None if it accepts them.

    ``values`` maps option names (``OPTIONS``) to the user's values; missing names
    take their defaults. The message is the one every tool shows.
    """
    message, out = output_format_problem(input_format, output_format)
    if message:
        return message
    for name, kind, formats in CHECKS:
        value = values.get(name)
        if kind == "positive":
            if value is not None and value <= 0:
                return f"{name} must be a positive integer, got {value}"
        elif kind == "required_for_inputs":
            if input_format in formats and not is_set(name, value):
                return f'{name} is required for input_format "{input_format}"'
        elif kind == "inputs":
            if is_set(name, value) and input_format not in formats:
                return f"{name} applies only to the {_either(formats)} input format, not {input_format}"
        elif kind == "outputs":
            if is_set(name, value) and out not in formats:
                return f"{name} applies only to the {_either(formats)} output format, not {out}"
    return None
