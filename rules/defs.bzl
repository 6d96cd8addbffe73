"""Public API of rules_tfjs: convert TensorFlow / Keras models to TensorFlow.js at build time.

    load("//rules:defs.bzl", "tfjs_model", "tfjs_model_test", "tfjs_quantized_model", "tfjs_web_package", "TfjsModelInfo")

    tfjs_model(
        name = "mlp_graph",                      # output: bazel-bin/<pkg>/mlp_graph/model.json
        src = "models/mlp_keras2.h5",
        input_format = "keras",
        output_format = "tfjs_graph_model",
        metadata = {"info": "metadata/info.json"},
    )

Each target runs one `TfjsConvert` action (a persistent worker by default) and
produces one directory named after the target, holding `model.json` and the weight
shards. Outputs are byte-identical across runs, machines and checkout paths.
"""

load("//rules/private:providers.bzl", _TfjsModelInfo = "TfjsModelInfo")
load("//rules/private:tfjs_migrated_model.bzl", _tfjs_migrated_model_rule = "tfjs_migrated_model_rule")
load(
    "//rules/private:tfjs_model.bzl",
    _tfjs_model_rule = "tfjs_model_rule",
    _tfjs_quantized_model_rule = "tfjs_quantized_model_rule",
)
load("//rules/private:tfjs_model_test.bzl", _tfjs_model_test = "tfjs_model_test")
load("//rules/private:tfjs_web_package.bzl", _tfjs_web_package_rule = "tfjs_web_package_rule")

TfjsModelInfo = _TfjsModelInfo

# Runs a tfjs_model's output in @tensorflow/tfjs 4.22 (Node) and compares its outputs with
# expected ones or with TensorFlow's predictions of the source model. Needs the
# `tfjs_npm` repository (repositories.bzl: tfjs_npm_repository).
tfjs_model_test = _tfjs_model_test

# Migrates a legacy tfjs 0.x model (tensorflowjs_model.pb + weights_manifest.json) to
# model.json; see tools/pb2json/README.md.
tfjs_migrated_model = _tfjs_migrated_model_rule

# Packages a converted model for web apps: one directory `npm pack` accepts, with
# content-hashed shards, .gz/.br copies, integrity.json, a checking loader and typings;
# see README.md "Shipping to a web app".
tfjs_web_package = _tfjs_web_package_rule

def _invert_metadata(name, metadata):
    """{name: label} -> {label: name}, the shape attr.label_keyed_string_dict needs."""
    if metadata == None:
        return {}
    if type(metadata) != type({}):
        fail("%s: metadata must be a dict of name -> JSON file label" % name)
    inverted = {}
    for key in sorted(metadata):
        label = metadata[key]
        if label in inverted:
            fail("%s: metadata file %s is used for both %r and %r; give each name its own file" % (
                name,
                label,
                inverted[label],
                key,
            ))
        inverted[label] = key
    return inverted

def tfjs_model(name, src, input_format, metadata = None, **kwargs):
    """Converts a model with tfjsconv into `<name>/` (model.json + weight shards).

    Args:
      name: target name; also the name of the output directory.
      src: the model: a file (.h5, .keras, .pb, model.json), a directory or filegroup
        whose files share one root (a SavedModel), or another tfjs_model target.
      input_format: keras, keras_keras, keras_saved_model, tf_frozen_model, tf_hub,
        tf_saved_model or tfjs_layers_model.
      metadata: dict of name -> JSON file label, written to userDefinedMetadata.
      **kwargs: output_format, weight_shard_size_bytes, quantize_float16,
        quantize_uint8, quantize_uint16 (lists of weight-name patterns),
        signature_name, saved_model_tags, output_node_names, strip_debug_ops,
        control_flow_v2, use_structured_outputs_names, split_weights_by_layer,
        skip_op_check, and the common attributes (visibility, tags, testonly,
        exec_properties to route the conversion to a big remote executor...).
    """
    _tfjs_model_rule(
        name = name,
        src = src,
        input_format = input_format,
        metadata = _invert_metadata(name, metadata),
        **kwargs
    )

def tfjs_quantized_model(name, src, input_format, dtype = "", patterns = None, metadata = None, **kwargs):
    """A tfjs_model whose weights are quantized; quantization is required.

    Either one `dtype` for the weights `patterns` select, or `max_error`: every weight's
    dtype chosen by measured error (`calibration`, `error_metric`; the
    `quantization_report` output group holds the report).

    Args:
      name: target name; also the name of the output directory.
      src: as for tfjs_model.
      input_format: as for tfjs_model.
      dtype: float16, uint8 or uint16 (checked at analysis time); or "" with max_error.
      patterns: fnmatch patterns of weight (node) names to quantize with `dtype`,
        e.g. ["dense/kernel*"]; None or [] quantizes every weight that no other
        quantize_* pattern claims.
      metadata: dict of name -> JSON file label.
      **kwargs: every other tfjs_model attribute (including extra quantize_* lists),
        and max_error, calibration, error_metric.
    """
    _tfjs_quantized_model_rule(
        name = name,
        src = src,
        input_format = input_format,
        dtype = dtype,
        patterns = patterns or [],
        metadata = _invert_metadata(name, metadata),
        **kwargs
    )
