"""The ``tfjs_model`` target: the Bazel rule's attributes as Pants fields."""

from __future__ import annotations

from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    DictStringToStringField,
    IntField,
    MultipleSourcesField,
    StringField,
    StringSequenceField,
    Target,
)

from pants_tfjs import argv


class TfjsModelSourcesField(MultipleSourcesField):
    required = True
    help = (
        "The model's files: one `.h5`/`.keras`/`.pb`/`model.json`, or every file of a "
        "SavedModel / tfjs model directory (e.g. `['saved/**']`), plus metadata JSON files."
    )


class TfjsSrcField(StringField):
    alias = "src"
    help = "The model root (file or directory) relative to this BUILD file, if `sources` is ambiguous."


class TfjsInputFormatField(StringField):
    alias = "input_format"
    required = True
    valid_choices = argv.INPUT_FORMATS
    help = "The input format, as for `tensorflowjs_converter --input_format`."


class TfjsOutputFormatField(StringField):
    alias = "output_format"
    valid_choices = argv.OUTPUT_FORMATS
    help = "The output format; empty = the converter's default for `input_format`."


class TfjsShardSizeField(IntField):
    alias = "weight_shard_size_bytes"
    default = argv.DEFAULT_SHARD_SIZE_BYTES
    help = "Maximum bytes per weight shard (tfjs_* outputs only)."


class TfjsQuantizeFloat16Field(StringSequenceField):
    alias = "quantize_float16"
    help = "fnmatch patterns of weight names to store as float16 (`['*']` for all)."


class TfjsQuantizeUint8Field(StringSequenceField):
    alias = "quantize_uint8"
    help = "fnmatch patterns of weight names to quantize to uint8."


class TfjsQuantizeUint16Field(StringSequenceField):
    alias = "quantize_uint16"
    help = "fnmatch patterns of weight names to quantize to uint16."


class TfjsMetadataField(DictStringToStringField):
    alias = "metadata"
    help = "name -> JSON file (relative to this BUILD file, also listed in `sources`)."


class TfjsSignatureNameField(StringField):
    alias = "signature_name"
    help = "SavedModel signature to convert (tf_saved_model / tf_hub)."


class TfjsSavedModelTagsField(StringSequenceField):
    alias = "saved_model_tags"
    default = ("serve",)
    help = "MetaGraph tags of the SavedModel to load."


class TfjsOutputNodeNamesField(StringSequenceField):
    alias = "output_node_names"
    help = "Output node names; required for tf_frozen_model."


class TfjsStripDebugOpsField(BoolField):
    alias = "strip_debug_ops"
    default = True
    help = "Remove Assert/Print/CheckNumerics ops from graph models."


class TfjsControlFlowV2Field(BoolField):
    alias = "control_flow_v2"
    default = False
    help = "Keep TF2 control flow ops in graph models."


class TfjsStructuredOutputsField(BoolField):
    alias = "use_structured_outputs_names"
    default = False
    help = "Name graph-model outputs by the SavedModel's structured output keys."


class TfjsSplitWeightsField(BoolField):
    alias = "split_weights_by_layer"
    default = False
    help = "One weight group per layer (tfjs_layers_model output only)."


class TfjsSkipOpCheckField(BoolField):
    alias = "skip_op_check"
    default = False
    help = "Do not fail on ops the tfjs runtime does not support."


class TfjsWebPackageNameField(StringField):
    alias = "web_package_name"
    help = (
        "Also write the model's npm web package (tfjs_web_package: hashed shards, .gz/.br, "
        "integrity-checking loader, typings) under `<dir>/<target name>_web/`, with this npm name."
    )


class TfjsWebPackageVersionField(StringField):
    alias = "web_package_version"
    help = "The web package's version (SemVer); set with `web_package_name`."


class TfjsModelDependencies(Dependencies):
    pass


FIELDS = (
    TfjsSrcField,
    TfjsInputFormatField,
    TfjsOutputFormatField,
    TfjsShardSizeField,
    TfjsQuantizeFloat16Field,
    TfjsQuantizeUint8Field,
    TfjsQuantizeUint16Field,
    TfjsMetadataField,
    TfjsSignatureNameField,
    TfjsSavedModelTagsField,
    TfjsOutputNodeNamesField,
    TfjsStripDebugOpsField,
    TfjsControlFlowV2Field,
    TfjsStructuredOutputsField,
    TfjsSplitWeightsField,
    TfjsSkipOpCheckField,
    TfjsWebPackageNameField,
    TfjsWebPackageVersionField,
)


class TfjsModelTarget(Target):
    alias = "tfjs_model"
    core_fields = (*COMMON_TARGET_FIELDS, TfjsModelDependencies, TfjsModelSourcesField, *FIELDS)
    help = (
        "A model converted to TensorFlow.js by tfjsconv at build time. Depend on it from a "
        "`python_tests`/`resources` consumer, or run `pants export-codegen` to get the files "
        "(under `<dir>/<target name>/`)."
    )


def spec_from_target(target: Target) -> argv.TfjsModelSpec:
    """Field values -> the Pants-free spec the argv module works on."""
    metadata = target[TfjsMetadataField].value or {}
    return argv.TfjsModelSpec(
        address=str(target.address),
        input_format=target[TfjsInputFormatField].value,
        output_format=target[TfjsOutputFormatField].value or None,
        src=target[TfjsSrcField].value or None,
        weight_shard_size_bytes=target[TfjsShardSizeField].value,
        quantize_float16=tuple(target[TfjsQuantizeFloat16Field].value or ()),
        quantize_uint8=tuple(target[TfjsQuantizeUint8Field].value or ()),
        quantize_uint16=tuple(target[TfjsQuantizeUint16Field].value or ()),
        metadata=tuple(sorted(metadata.items())),
        signature_name=target[TfjsSignatureNameField].value or None,
        saved_model_tags=tuple(target[TfjsSavedModelTagsField].value or ()),
        output_node_names=tuple(target[TfjsOutputNodeNamesField].value or ()),
        strip_debug_ops=target[TfjsStripDebugOpsField].value,
        control_flow_v2=target[TfjsControlFlowV2Field].value,
        use_structured_outputs_names=target[TfjsStructuredOutputsField].value,
        split_weights_by_layer=target[TfjsSplitWeightsField].value,
        skip_op_check=target[TfjsSkipOpCheckField].value,
        web_package_name=target[TfjsWebPackageNameField].value or None,
        web_package_version=target[TfjsWebPackageVersionField].value or None,
    )
