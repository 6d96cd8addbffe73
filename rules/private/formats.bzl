"""Generated from converter/tfjsconv/formats.py by tools/generate.py; do not edit.

The converter's formats, defaults and option rules (tfjsconv.formats)."""

# Every --input_format.
INPUT_FORMATS = [
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tf_frozen_model",
    "tf_hub",
    "tf_saved_model",
    "tfjs_layers_model",
]

# Every --output_format.
OUTPUT_FORMATS = [
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tfjs_graph_model",
    "tfjs_layers_model",
]

# Outputs made of model.json + weight shards.
TFJS_OUTPUTS = [
    "tfjs_graph_model",
    "tfjs_layers_model",
]

# Inputs that take saved_model_tags.
SAVED_MODEL_INPUTS = [
    "keras_saved_model",
    "tf_hub",
    "tf_saved_model",
]

# The converter's output format when none is given.
DEFAULT_OUTPUT_FORMAT = {
    "keras": "tfjs_layers_model",
    "keras_keras": "tfjs_layers_model",
    "keras_saved_model": "tfjs_layers_model",
    "tf_frozen_model": "tfjs_graph_model",
    "tf_hub": "tfjs_graph_model",
    "tf_saved_model": "tfjs_graph_model",
    "tfjs_layers_model": "keras",
}

# Every (input_format, output_format) pair that converts.
SUPPORTED_PAIRS = [
    ("keras", "tfjs_graph_model"),
    ("keras", "tfjs_layers_model"),
    ("keras_keras", "tfjs_graph_model"),
    ("keras_keras", "tfjs_layers_model"),
    ("keras_saved_model", "tfjs_layers_model"),
    ("tf_frozen_model", "tfjs_graph_model"),
    ("tf_hub", "tfjs_graph_model"),
    ("tf_saved_model", "tfjs_graph_model"),
    ("tfjs_layers_model", "keras"),
    ("tfjs_layers_model", "keras_keras"),
    ("tfjs_layers_model", "keras_saved_model"),
    ("tfjs_layers_model", "tfjs_graph_model"),
    ("tfjs_layers_model", "tfjs_layers_model"),
]

# Name of the main output inside the target's directory.
MAIN_OUTPUT = {
    "keras": "model.h5",
    "keras_keras": "model.keras",
    "keras_saved_model": "saved_model",
    "tfjs_graph_model": "model.json",
    "tfjs_layers_model": "model.json",
}

# The file name of a tfjs model's topology + weights manifest.
MODEL_JSON = "model.json"

# quantize_<dtype> options.
QUANTIZATION_DTYPES = [
    "float16",
    "uint8",
    "uint16",
]

# error_metric values of quantize_budget.
ERROR_METRICS = [
    "max_abs",
    "max_rel",
    "top1",
]

# weight_shard_size_bytes' default.
DEFAULT_SHARD_SIZE_BYTES = 4194304

# Option -> default (None, "" and [] mean unset).
OPTION_DEFAULTS = {
    "weight_shard_size_bytes": 4194304,
    "quantize_float16": None,
    "quantize_uint8": None,
    "quantize_uint16": None,
    "metadata": None,
    "signature_name": None,
    "saved_model_tags": [
        "serve",
    ],
    "output_node_names": [],
    "strip_debug_ops": True,
    "control_flow_v2": False,
    "use_structured_outputs_names": False,
    "split_weights_by_layer": False,
    "skip_op_check": False,
}

# (option, kind, formats), checked in order by validate.bzl.
CHECKS = [
    ("weight_shard_size_bytes", "positive", []),
    ("output_node_names", "required_for_inputs", ["tf_frozen_model"]),
    ("weight_shard_size_bytes", "outputs", ["tfjs_graph_model", "tfjs_layers_model"]),
    ("signature_name", "inputs", ["tf_hub", "tf_saved_model"]),
    ("control_flow_v2", "outputs", ["tfjs_graph_model"]),
    ("quantize_float16", "outputs", ["tfjs_graph_model", "tfjs_layers_model"]),
    ("quantize_uint8", "outputs", ["tfjs_graph_model", "tfjs_layers_model"]),
    ("quantize_uint16", "outputs", ["tfjs_graph_model", "tfjs_layers_model"]),
    ("split_weights_by_layer", "outputs", ["tfjs_layers_model"]),
]

# The pinned environment of every conversion action.
ACTION_ENV = {
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
