"""Providers of rules_tfjs."""

TfjsModelInfo = provider(
    doc = """A converted TensorFlow.js (or Keras) model, from `tfjs_model`,
`tfjs_quantized_model` or `tfjs_migrated_model` (every field means the same for each).

The whole model lives in one tree artifact, because the number of weight shards is
only known after conversion; `model.json` is inside it, next to the shards, so the
relative shard paths in `weightsManifest` resolve when the directory is served.""",
    fields = {
        "model_dir": "File: the output tree artifact (named after the target). For " +
                     "tfjs_* formats it holds `model.json` and `group*-shard*of*.bin`.",
        "model_json": "string: execroot-relative path of `model.json` inside `model_dir` " +
                      "(`model_dir.path + \"/model.json\"`), or None for keras* outputs.",
        "model_file": "string: path of the main output file or directory inside " +
                      "`model_dir` (model.json, model.h5, model.keras or saved_model).",
        "format": "string: the output format (`tfjs_graph_model`, `tfjs_layers_model`, " +
                  "`keras`, `keras_keras` or `keras_saved_model`).",
        "input_format": "string: the input format the model was converted from " +
                        "(`tfjs_legacy_graph_model` for `tfjs_migrated_model`).",
        "quantization": "dict: dtype (`float16`/`uint8`/`uint16`) -> list of weight-name " +
                        "patterns; an empty list means every weight no other pattern claims. " +
                        "Empty dict when not quantized.",
        "weight_shard_size_bytes": "int: the maximum size of one weight shard file the " +
                                   "rule asked for; None when it wrote no shards of its own " +
                                   "(keras* outputs; `tfjs_migrated_model` keeps the legacy shards).",
    },
)
