"""Implementation of `tfjs_model` and `tfjs_quantized_model`."""

load(":converter_runtime.bzl", "CONVERTER_RUNTIME_ATTRS", "converter_command", "runtime_tree")
load(
    ":formats.bzl",
    "ACTION_ENV",
    "DEFAULT_OUTPUT_FORMAT",
    "DEFAULT_SHARD_SIZE_BYTES",
    "ERROR_METRICS",
    "INPUT_FORMATS",
    "MAIN_OUTPUT",
    "MODEL_JSON",
    "OPTION_DEFAULTS",
    "OUTPUT_FORMATS",
    "QUANTIZATION_DTYPES",
    "SAVED_MODEL_INPUTS",
    "TFJS_OUTPUTS",
)
load(":providers.bzl", "TfjsModelInfo")
load(":validate.bzl", "problem")

def _fail(ctx, msg):
    fail("%s: %s" % (ctx.label, msg))

def _quantization(ctx):
    """dtype -> patterns for the dtypes asked for ([] = all remaining weights)."""
    quant = {}
    for dtype in QUANTIZATION_DTYPES:
        patterns = getattr(ctx.attr, "quantize_" + dtype, [])
        for p in patterns:
            if not p or "," in p:
                _fail(ctx, "quantize_%s patterns must be non-empty and contain no ',': %r" % (dtype, p))
        if patterns:
            quant[dtype] = list(patterns)
    dtype = getattr(ctx.attr, "dtype", None)
    if dtype:
        if dtype not in QUANTIZATION_DTYPES:
            _fail(ctx, "unknown quantization dtype %r; choose one of: %s" % (dtype, ", ".join(QUANTIZATION_DTYPES)))
        for p in ctx.attr.patterns:
            if not p or "," in p:
                _fail(ctx, "patterns must be non-empty and contain no ',': %r" % p)
        quant[dtype] = quant.get(dtype, []) + list(ctx.attr.patterns)
    return quant

def _is_number(text):
    """Whether `text` is a non-negative decimal number (Starlark has no float())."""
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    if not (whole + fraction) or not (whole + fraction).isdigit():
        return False
    if "e" in text.lower():
        digits = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        return digits.isdigit()
    return True

def _budget(ctx, quant, out_fmt):
    """The max_error attributes of tfjs_quantized_model, checked; None when unset.

    Returns:
      None, or a struct(max_error, calibration (File or None), error_metric).
    """
    if not hasattr(ctx.attr, "max_error"):
        return None
    max_error = ctx.attr.max_error
    if not max_error:
        if not ctx.attr.dtype:
            _fail(ctx, "set dtype (one dtype for the chosen weights) or max_error (a dtype per weight, chosen by measured error)")
        if ctx.attr.calibration or ctx.attr.error_metric:
            _fail(ctx, "calibration and error_metric apply only with max_error")
        return None
    if ctx.attr.dtype:
        _fail(ctx, "dtype and max_error cannot both be set: max_error chooses every weight's dtype")
    if not _is_number(max_error):
        _fail(ctx, "max_error must be a number >= 0, got %r" % max_error)
    for dtype in QUANTIZATION_DTYPES:
        if dtype in quant:
            _fail(ctx, "max_error chooses every weight's dtype; do not combine it with quantize_%s" % dtype)
    if out_fmt not in TFJS_OUTPUTS:
        _fail(ctx, "max_error applies only to the %s output format, not %s" % (" or ".join(TFJS_OUTPUTS), out_fmt))
    metric = ctx.attr.error_metric
    if metric and metric not in ERROR_METRICS:
        _fail(ctx, "unknown error_metric %r; choose one of: %s" % (metric, ", ".join(ERROR_METRICS)))
    calibration = None
    if ctx.attr.calibration:
        files = ctx.files.calibration
        if len(files) != 1:
            _fail(ctx, "calibration must be exactly one .npz or .json file, %s gives %d" % (ctx.attr.calibration.label, len(files)))
        calibration = files[0]
    return struct(max_error = max_error, calibration = calibration, error_metric = metric)

def _validate(ctx, quant):
    """The converter's own check (validate.bzl), then what only a rule must check.

    Returns:
      The resolved output format.
    """
    in_fmt = ctx.attr.input_format
    values = {name: getattr(ctx.attr, name) for name in OPTION_DEFAULTS if name != "metadata"}
    for dtype in QUANTIZATION_DTYPES:
        # A dtype asked for with no pattern means "every remaining weight".
        values["quantize_" + dtype] = (quant[dtype] or True) if dtype in quant else None
    message = problem(in_fmt, ctx.attr.output_format, values)
    if message:
        _fail(ctx, message)

    # List attributes become one comma-separated flag value.
    for tag in ctx.attr.saved_model_tags:
        if not tag or "," in tag:
            _fail(ctx, "saved_model_tags entries must be non-empty and contain no ',': %r" % tag)
    for node in ctx.attr.output_node_names:
        if not node or "," in node:
            _fail(ctx, "output_node_names entries must be non-empty and contain no ',': %r" % node)
    return ctx.attr.output_format or DEFAULT_OUTPUT_FORMAT[in_fmt]

def _input_path(ctx, in_fmt):
    """The path the converter reads: a file, a directory, or the root of a file set."""
    if TfjsModelInfo in ctx.attr.src:
        info = ctx.attr.src[TfjsModelInfo]
        return info.model_file
    files = ctx.files.src
    if not files:
        _fail(ctx, "src %s provides no files" % ctx.attr.src.label)
    if len(files) == 1:
        f = files[0]
        if f.is_directory and in_fmt == "tfjs_layers_model":
            return f.path + "/" + MODEL_JSON
        return f.path

    # Several files: find the model's root (a SavedModel directory or a model.json).
    markers, what = [], ""
    if in_fmt in SAVED_MODEL_INPUTS:
        markers = [f for f in files if f.basename in ("saved_model.pb", "saved_model.pbtxt")]
        what = "saved_model.pb"
    elif in_fmt == "tfjs_layers_model":
        markers = [f for f in files if f.basename == MODEL_JSON]
        what = MODEL_JSON
    else:
        _fail(ctx, "src must be a single file for input_format %s, got %d files" % (in_fmt, len(files)))
    if len(markers) != 1:
        _fail(ctx, "src must contain exactly one %s for input_format %s, found %d" % (what, in_fmt, len(markers)))
    marker = markers[0]
    root = marker.dirname
    for f in files:
        if f.root.path != marker.root.path or not f.path.startswith(root + "/"):
            _fail(ctx, "every src file must live under %s (the directory of %s); %s does not" % (
                root,
                what,
                f.short_path,
            ))
    return marker.path if in_fmt == "tfjs_layers_model" else root

def _metadata_flag(ctx):
    entries = []
    names = {}
    for target, name in ctx.attr.metadata.items():
        if not name or ":" in name or "," in name:
            _fail(ctx, "metadata names must be non-empty and contain no ':' or ',': %r" % name)
        if name in names:
            _fail(ctx, "metadata name %r given twice" % name)
        files = target.files.to_list()
        if len(files) != 1:
            _fail(ctx, "metadata %r must be exactly one JSON file, %s gives %d" % (name, target.label, len(files)))
        if "," in files[0].path:
            _fail(ctx, "metadata file paths cannot contain ',': %s" % files[0].path)
        names[name] = files[0]

    # Sorted by name so the flag (and so the action key) never depends on dict order.
    for name in sorted(names):
        entries.append("%s:%s" % (name, names[name].path))
    return ",".join(entries), [names[n] for n in sorted(names)]

def _tfjs_model_impl(ctx):
    in_fmt = ctx.attr.input_format
    quant = _quantization(ctx)
    out_fmt = _validate(ctx, quant)
    input_path = _input_path(ctx, in_fmt)
    metadata, metadata_files = _metadata_flag(ctx)
    budget = _budget(ctx, quant, out_fmt)

    out_dir = ctx.actions.declare_directory(ctx.label.name)
    main_output = out_dir.path + "/" + MAIN_OUTPUT[out_fmt]
    if out_fmt in TFJS_OUTPUTS:
        # The converter writes model.json + shards straight into the declared directory.
        output_path = out_dir.path
    else:
        output_path = main_output

    # Every flag is one `--flag=value` token: the multiline param file drops empty
    # lines, so an empty value given as a separate argument would vanish.
    args = ctx.actions.args()
    args.add("--input_format=" + in_fmt)
    args.add("--output_format=" + out_fmt)
    if ctx.attr.weight_shard_size_bytes != DEFAULT_SHARD_SIZE_BYTES:
        args.add("--weight_shard_size_bytes=" + str(ctx.attr.weight_shard_size_bytes))
    for dtype in QUANTIZATION_DTYPES:
        if dtype in quant:
            if quant[dtype]:
                args.add("--quantize_%s=%s" % (dtype, ",".join(quant[dtype])))
            else:
                args.add("--quantize_%s" % dtype)
    if metadata:
        args.add("--metadata=" + metadata)
    if ctx.attr.signature_name:
        args.add("--signature_name=" + ctx.attr.signature_name)
    if in_fmt in SAVED_MODEL_INPUTS:
        args.add("--saved_model_tags=" + ",".join(ctx.attr.saved_model_tags))
    if ctx.attr.output_node_names:
        args.add("--output_node_names=" + ",".join(ctx.attr.output_node_names))
    if out_fmt == "tfjs_graph_model":
        args.add("--strip_debug_ops=%s" % ("true" if ctx.attr.strip_debug_ops else "false"))
        args.add("--control_flow_v2=%s" % ("true" if ctx.attr.control_flow_v2 else "false"))
        args.add("--use_structured_outputs_names=%s" % (
            "true" if ctx.attr.use_structured_outputs_names else "false"
        ))
    if ctx.attr.split_weights_by_layer:
        args.add("--split_weights_by_layer")
    if ctx.attr.skip_op_check:
        args.add("--skip_op_check")
    outputs, output_groups, budget_files = [out_dir], {}, []
    if budget:
        report_dir = ctx.actions.declare_directory(ctx.label.name + "_quantization_report")
        args.add("--quantize_budget=" + budget.max_error)
        if budget.calibration:
            args.add("--calibration_inputs=" + budget.calibration.path)
            budget_files.append(budget.calibration)
        if budget.error_metric:
            args.add("--error_metric=" + budget.error_metric)
        args.add("--quantization_report_dir=" + report_dir.path)
        outputs.append(report_dir)
        output_groups["quantization_report"] = depset([report_dir])

    # The directory Bazel pre-creates is empty; --overwrite lets the converter replace it.
    args.add("--overwrite")
    args.add("--quiet")
    args.add(input_path)
    args.add(output_path)

    # Workers need every per-request argument in a flag file that comes last.
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")

    executable, startup, tools, runtime_env = converter_command(ctx)
    env = dict(ACTION_ENV)
    env.update(runtime_env)
    ctx.actions.run(
        executable = executable,
        arguments = startup + [args],
        inputs = depset(ctx.files.src + metadata_files + budget_files, transitive = [runtime_tree(ctx)]),
        tools = tools,
        outputs = outputs,
        mnemonic = "TfjsConvert",
        progress_message = "Converting %s to %s (%s)" % (ctx.attr.src.label, out_fmt, ctx.label),
        env = env,
        execution_requirements = {
            "block-network": "1",
            "requires-worker-protocol": "json",
            "supports-workers": "1",
        },
    )

    return [
        DefaultInfo(
            files = depset([out_dir]),
            runfiles = ctx.runfiles(files = [out_dir]),
        ),
        TfjsModelInfo(
            model_dir = out_dir,
            model_json = main_output if MAIN_OUTPUT[out_fmt] == MODEL_JSON else None,
            model_file = main_output,
            format = out_fmt,
            input_format = in_fmt,
            quantization = quant,
            weight_shard_size_bytes = ctx.attr.weight_shard_size_bytes if out_fmt in TFJS_OUTPUTS else None,
        ),
        OutputGroupInfo(**output_groups),
    ]

# The doc= strings are the one home of the attribute documentation: the tables in
# README.md and rules/README.md are generated from them (tools/generate.py).
_COMMON_ATTRS = {
    "src": attr.label(
        mandatory = True,
        allow_files = True,
        doc = "The model: one file (`.h5`, `.keras`, `.pb`, `model.json`), a directory, a " +
              "filegroup whose files share one root (SavedModel: the directory of " +
              "`saved_model.pb`; layers model: the directory of `model.json`), or another " +
              "`tfjs_model`.",
    ),
    "input_format": attr.string(
        mandatory = True,
        doc = "One of " + ", ".join(INPUT_FORMATS) + ".",
    ),
    "output_format": attr.string(
        default = "",
        doc = "One of " + ", ".join(OUTPUT_FORMATS) + " (`keras`: `model.h5`, `keras_keras`: " +
              "`model.keras`, `keras_saved_model`: `saved_model/`); empty = the converter's " +
              "default for `input_format` (keras* -> tfjs_layers_model, tf_* -> " +
              "tfjs_graph_model, tfjs_layers_model -> keras). Unsupported pairs fail at analysis.",
    ),
    "weight_shard_size_bytes": attr.int(
        default = DEFAULT_SHARD_SIZE_BYTES,
        doc = "Maximum bytes per weight shard file (tfjs_* outputs only); must be > 0.",
    ),
    "quantize_float16": attr.string_list(
        doc = "fnmatch patterns of weight names to store as float16 (`[\"*\"]`: every " +
              "weight no other pattern claims); tfjs_* outputs only.",
    ),
    "quantize_uint8": attr.string_list(
        doc = "fnmatch patterns of weight names to quantize to uint8 (affine min/scale); " +
              "tfjs_* outputs only.",
    ),
    "quantize_uint16": attr.string_list(
        doc = "fnmatch patterns of weight names to quantize to uint16 (affine min/scale); " +
              "tfjs_* outputs only.",
    ),
    "metadata": attr.label_keyed_string_dict(
        allow_files = [".json"],
        doc = "JSON files written to model.json's `userDefinedMetadata[name]` (sorted by " +
              "name). The public macros take `{name: label}`.",
    ),
    "signature_name": attr.string(
        default = "",
        doc = "SavedModel signature to convert (tf_saved_model, tf_hub only); empty = " +
              "serving_default.",
    ),
    "saved_model_tags": attr.string_list(
        default = ["serve"],
        doc = "MetaGraph tags of the SavedModel to load.",
    ),
    "output_node_names": attr.string_list(
        doc = "Output node names; required for tf_frozen_model.",
    ),
    "strip_debug_ops": attr.bool(
        default = True,
        doc = "Remove Assert/Print/CheckNumerics ops (graph models).",
    ),
    "control_flow_v2": attr.bool(
        default = False,
        doc = "Keep TF2 control flow (While/If) ops (tfjs_graph_model output only).",
    ),
    "use_structured_outputs_names": attr.bool(
        default = False,
        doc = "Name graph-model outputs by the SavedModel's structured output keys.",
    ),
    "split_weights_by_layer": attr.bool(
        default = False,
        doc = "One weight group per layer (tfjs_layers_model output only).",
    ),
    "skip_op_check": attr.bool(
        default = False,
        doc = "Do not fail on ops the tfjs runtime does not support.",
    ),
}
_COMMON_ATTRS.update(CONVERTER_RUNTIME_ATTRS)

tfjs_model_rule = rule(
    implementation = _tfjs_model_impl,
    attrs = _COMMON_ATTRS,
    provides = [TfjsModelInfo],
    doc = "Converts a TensorFlow/Keras model to TensorFlow.js. See `tfjs_model` in defs.bzl.",
)

_QUANT_ATTRS = dict(_COMMON_ATTRS)
_QUANT_ATTRS.update({
    "calibration": attr.label(
        allow_files = [".npz", ".json"],
        doc = "With `max_error`: the inputs the error is measured on (`.npz`, or `.json` " +
              "`{input name: nested list}`); none = generated from the model's signature " +
              "(the report says so).",
    ),
    "dtype": attr.string(
        default = "",
        doc = "Quantization dtype: " + ", ".join(QUANTIZATION_DTYPES) + "; checked at analysis. " +
              "Set this or `max_error`.",
    ),
    "error_metric": attr.string(
        default = "",
        doc = "With `max_error`: " + ", ".join(ERROR_METRICS) + " (empty = max_abs): largest " +
              "absolute output difference, the same relative to each output's range, or the " +
              "fraction of samples whose top-1 class changes.",
    ),
    "max_error": attr.string(
        default = "",
        doc = "Choose each weight's dtype (float32, float16, uint16, uint8) for the fewest " +
              "bytes whose outputs stay within this error of float32's on the calibration " +
              "inputs (a decimal number >= 0, measured in TensorFlow). Adds the " +
              "`quantization_report` output group (`<name>_quantization_report/`: .json, " +
              ".md table, .svg plot).",
    ),
    "patterns": attr.string_list(
        doc = "Weight-name patterns for `dtype`; empty = every weight that no " +
              "`quantize_*` pattern claims.",
    ),
})

tfjs_quantized_model_rule = rule(
    implementation = _tfjs_model_impl,
    attrs = _QUANT_ATTRS,
    provides = [TfjsModelInfo],
    doc = "Like tfjs_model, with required quantization. See `tfjs_quantized_model` in defs.bzl.",
)
