"""Analysis-time knowledge of the converter's formats, mirroring tfjsconv.api."""

INPUT_FORMATS = [
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tf_frozen_model",
    "tf_hub",
    "tf_saved_model",
    "tfjs_layers_model",
]

OUTPUT_FORMATS = [
    "keras",
    "keras_keras",
    "keras_saved_model",
    "tfjs_graph_model",
    "tfjs_layers_model",
]

# What the converter infers when output_format is left empty.
DEFAULT_OUTPUT_FORMAT = {
    "keras": "tfjs_layers_model",
    "keras_keras": "tfjs_layers_model",
    "keras_saved_model": "tfjs_layers_model",
    "tf_frozen_model": "tfjs_graph_model",
    "tf_hub": "tfjs_graph_model",
    "tf_saved_model": "tfjs_graph_model",
    "tfjs_layers_model": "keras",
}

# (input_format, output_format) pairs the converter implements (tfjsconv.api._DISPATCH).
SUPPORTED_PAIRS = [
    ("keras", "tfjs_layers_model"),
    ("keras", "tfjs_graph_model"),
    ("keras_keras", "tfjs_layers_model"),
    ("keras_keras", "tfjs_graph_model"),
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

# Name of the main output inside the target's directory, per output format.
MAIN_OUTPUT = {
    "keras": "model.h5",
    "keras_keras": "model.keras",
    "keras_saved_model": "saved_model",
    "tfjs_graph_model": "model.json",
    "tfjs_layers_model": "model.json",
}

QUANTIZATION_DTYPES = ["float16", "uint8", "uint16"]

DEFAULT_SHARD_SIZE_BYTES = 4194304
