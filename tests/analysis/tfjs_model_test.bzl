"""Analysis tests (bazel_skylib's analysistest) for tfjs_model, tfjs_quantized_model and
tfjs_migrated_model: every fail() message, the TfjsModelInfo fields, and the
TfjsConvert action's command line and environment per attribute.

They run on both Bazels (4.2.3 with Debian 12's skylib 1.0.3, 7.7.1 with Debian forky's
skylib 1.9.1) and need no conversion: analysis only, so they are cheap.
"""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "TfjsModelInfo", "tfjs_model", "tfjs_quantized_model")
load("//rules/private:formats.bzl", "ACTION_ENV")  # buildifier: disable=bzl-visibility
load("//rules/private:tfjs_model.bzl", "tfjs_model_rule")  # buildifier: disable=bzl-visibility

# --- fail() messages -------------------------------------------------------------------

def _failure_test_impl(ctx):
    env = analysistest.begin(ctx)

    # Every message starts with the target's label, as the rules format it ("$PKG" in
    # the expected text is the package's label, spelled as this Bazel spells labels).
    target = analysistest.target_under_test(env)
    pkg = str(target.label).rpartition(":")[0]
    asserts.expect_failure(env, "%s: %s" % (target.label, ctx.attr.message.replace("$PKG", pkg)))
    return analysistest.end(env)

failure_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = {"message": attr.string(mandatory = True, doc = "Expected fail() text after the label.")},
)

# --- TfjsModelInfo ---------------------------------------------------------------------

def _info_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    info = target[TfjsModelInfo]
    want = ctx.attr

    asserts.equals(env, target.label.name, info.model_dir.basename)
    asserts.true(env, info.model_dir.is_directory, "model_dir must be a tree artifact")
    asserts.equals(env, [info.model_dir], target[DefaultInfo].files.to_list())
    asserts.equals(env, info.model_dir.path + "/" + want.main_output, info.model_file)
    if want.main_output == "model.json":
        asserts.equals(env, info.model_file, info.model_json)
    else:
        asserts.equals(env, None, info.model_json)
    asserts.equals(env, want.format, info.format)
    asserts.equals(env, want.input_format, info.input_format)
    asserts.equals(env, want.quantization, info.quantization)
    want_shards = want.weight_shard_size_bytes if want.weight_shard_size_bytes > 0 else None
    asserts.equals(env, want_shards, info.weight_shard_size_bytes)
    return analysistest.end(env)

info_test = analysistest.make(
    _info_test_impl,
    attrs = {
        "main_output": attr.string(mandatory = True, doc = "Expected main output inside model_dir."),
        "format": attr.string(mandatory = True, doc = "Expected TfjsModelInfo.format."),
        "input_format": attr.string(mandatory = True, doc = "Expected TfjsModelInfo.input_format."),
        "quantization": attr.string_list_dict(doc = "Expected TfjsModelInfo.quantization."),
        "weight_shard_size_bytes": attr.int(
            default = 4194304,
            doc = "Expected shard size; 0 means None (the rule wrote no shards of its own).",
        ),
    },
)

# --- the TfjsConvert action ------------------------------------------------------------

def _action_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == ctx.attr.mnemonic]
    asserts.equals(env, 1, len(actions), "one %s action" % ctx.attr.mnemonic)
    if not actions:
        return analysistest.end(env)
    action = actions[0]
    info = target[TfjsModelInfo]

    # A conversion or migration starts the @tfjs_python snapshot through its own dynamic
    # loader: argv = loader, --library-path DIR, interpreter, -s, -S, tool, --sys_path=...;
    # the rest is what the param file (the worker request) holds, which analysis sees
    # expanded (a migration: --entry=migrate, then tfjs_pb2json's arguments).
    argv = action.argv
    asserts.true(env, argv[0].endswith("/ld-linux-x86-64.so.2"), "loader: " + argv[0])
    asserts.equals(env, "--library-path", argv[1])
    asserts.true(env, argv[3].endswith("/bin/python3.11"), "interpreter: " + argv[3])
    asserts.equals(env, ["-s", "-S", "-B", "rules/private/tfjs_convert_tool.py"], argv[4:8])
    rest = argv[8:]
    for _ in range(len(rest)):
        if not rest or not rest[0].startswith("--sys_path="):
            break
        rest = rest[1:]

    # Output paths differ per configuration: "$OUT" is the target's tree artifact, "$DIR"
    # the directory holding it (for chained targets).
    subst = {"$OUT": info.model_dir.path, "$DIR": info.model_dir.dirname}
    expected = []
    for a in ctx.attr.argv:
        for key, value in subst.items():
            a = a.replace(key, value)
        expected.append(a)
    asserts.equals(env, expected, rest)

    # The complete environment is the one pinned list (plus the snapshot's PYTHONHOME);
    # the values outputs depend on are spelled out here as well.
    action_env = dict(action.env)
    home = action_env.pop("PYTHONHOME", "")
    asserts.true(env, home.endswith("tfjs_python/python"), "PYTHONHOME: " + home)
    asserts.equals(env, home + "/lib", argv[2])
    asserts.equals(env, home + "/bin/python3.11", argv[3])
    asserts.equals(env, ACTION_ENV, action_env)
    for key, value in ctx.attr.env.items():
        asserts.equals(env, value, action.env.get(key), "env %s" % key)
    asserts.equals(env, [info.model_dir], action.outputs.to_list())

    # The runtime reaches the action as the site-packages directory plus its content
    # manifest: a few hundred inputs (converter sources, the snapshot), never one per
    # installed file, which a cold build would have to list, hash and symlink.
    inputs = [f.short_path for f in action.inputs.to_list()]
    asserts.true(env, len(inputs) < 1000, "%d inputs: the runtime is listed file by file" % len(inputs))
    runtime = [p for p in inputs if p.endswith("/site-packages.dir") or p.endswith("/runtime.manifest")]
    asserts.equals(env, 2, len(runtime), "the site-packages directory and its manifest: %s" % runtime)

    # The model and metadata files are inputs (the sandbox holds nothing else of them).
    for path in ctx.attr.inputs:
        asserts.true(env, path in inputs, "%s is not an input of %s" % (path, action.mnemonic))
    return analysistest.end(env)

action_test = analysistest.make(
    _action_test_impl,
    attrs = {
        "mnemonic": attr.string(default = "TfjsConvert"),
        "argv": attr.string_list(doc = "The action's arguments after the tool, in order."),
        "env": attr.string_dict(doc = "Environment entries that must be present."),
        "inputs": attr.string_list(doc = "Short paths that must be among the action's inputs."),
    },
)

# --- the fail() table -------------------------------------------------------------------

# name -> (rule, attributes, expected message after "<label>: "). Every fail() in
# rules/private/tfjs_model.bzl has an entry.
_FAILURES = {
    "bad_input_format": (tfjs_model, {"input_format": "onnx"}, "unknown input_format \"onnx\"; choose one of: keras, "),
    "bad_output_format": (tfjs_model, {"input_format": "keras", "output_format": "onnx"}, "unknown output_format \"onnx\"; choose one of: keras, "),
    "bad_pair": (
        tfjs_model,
        {"input_format": "tf_frozen_model", "output_format": "tfjs_layers_model", "output_node_names": ["y"]},
        "unsupported input_format/output_format pair: tf_frozen_model -> tfjs_layers_model " +
        "(from tf_frozen_model the converter writes: tfjs_graph_model)",
    ),
    "shard_zero": (tfjs_model, {"input_format": "keras", "weight_shard_size_bytes": 0}, "weight_shard_size_bytes must be a positive integer, got 0"),
    "shard_for_keras_output": (
        tfjs_model,
        {"input_format": "tfjs_layers_model", "output_format": "keras", "weight_shard_size_bytes": 1024},
        "weight_shard_size_bytes applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
    ),
    "frozen_without_nodes": (tfjs_model, {"input_format": "tf_frozen_model"}, "output_node_names is required for input_format \"tf_frozen_model\""),
    "signature_for_keras": (
        tfjs_model,
        {"input_format": "keras", "signature_name": "serving_alt"},
        "signature_name applies only to the tf_hub or tf_saved_model input format, not keras",
    ),
    "control_flow_for_layers": (
        tfjs_model,
        {"input_format": "keras", "control_flow_v2": True},
        "control_flow_v2 applies only to the tfjs_graph_model output format, not tfjs_layers_model",
    ),
    "split_for_graph": (
        tfjs_model,
        {"input_format": "keras", "output_format": "tfjs_graph_model", "split_weights_by_layer": True},
        "split_weights_by_layer applies only to the tfjs_layers_model output format",
    ),
    "bad_saved_model_tag": (
        tfjs_model,
        {"input_format": "tf_saved_model", "src": ":saved_model", "saved_model_tags": ["serve,gpu"]},
        "saved_model_tags entries must be non-empty and contain no ',': \"serve,gpu\"",
    ),
    "bad_output_node": (
        tfjs_model,
        {"input_format": "tf_frozen_model", "output_node_names": ["a,b"]},
        "output_node_names entries must be non-empty and contain no ',': \"a,b\"",
    ),
    "bad_quantize_pattern": (
        tfjs_model,
        {"input_format": "keras", "quantize_float16": ["a,b"]},
        "quantize_float16 patterns must be non-empty and contain no ',': \"a,b\"",
    ),
    "bad_dtype": (tfjs_quantized_model, {"input_format": "keras", "dtype": "int4"}, "unknown quantization dtype \"int4\"; choose one of: float16, "),
    "empty_pattern": (
        tfjs_quantized_model,
        {"input_format": "keras", "dtype": "uint8", "patterns": [""]},
        "patterns must be non-empty and contain no ',': \"\"",
    ),
    "quantized_keras_saved_model": (
        tfjs_model,
        {"input_format": "tfjs_layers_model", "output_format": "keras_saved_model", "quantize_uint8": ["*"]},
        "quantize_uint8 applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras_saved_model",
    ),
    "budget_neither": (
        tfjs_quantized_model,
        {"input_format": "keras"},
        "set dtype (one dtype for the chosen weights) or max_error (a dtype per weight, chosen by measured error)",
    ),
    "budget_and_dtype": (
        tfjs_quantized_model,
        {"input_format": "keras", "dtype": "uint8", "max_error": "0.1"},
        "dtype and max_error cannot both be set: max_error chooses every weight's dtype",
    ),
    "budget_not_number": (tfjs_quantized_model, {"input_format": "keras", "max_error": "-1"}, "max_error must be a number >= 0, got \"-1\""),
    "budget_with_pattern": (
        tfjs_quantized_model,
        {"input_format": "keras", "max_error": "0.1", "quantize_uint8": ["*"]},
        "max_error chooses every weight's dtype; do not combine it with quantize_uint8",
    ),
    "budget_for_keras_output": (
        tfjs_quantized_model,
        {"input_format": "tfjs_layers_model", "output_format": "keras", "max_error": "1e-3"},
        "max_error applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
    ),
    "budget_bad_metric": (
        tfjs_quantized_model,
        {"input_format": "keras", "max_error": "0.1", "error_metric": "l2"},
        "unknown error_metric \"l2\"; choose one of: max_abs, max_rel, top1",
    ),
    "budget_two_calibration_files": (
        tfjs_quantized_model,
        {"input_format": "keras", "max_error": "0.1", "calibration": ":two_json"},
        "calibration must be exactly one .npz or .json file, $PKG:two_json gives 2",
    ),
    "calibration_without_budget": (
        tfjs_quantized_model,
        {"input_format": "keras", "dtype": "uint8", "calibration": "testdata/calib.npz"},
        "calibration and error_metric apply only with max_error",
    ),
    "empty_src": (tfjs_model, {"input_format": "keras", "src": ":empty"}, "src $PKG:empty provides no files"),
    "two_files_for_keras": (
        tfjs_model,
        {"input_format": "keras", "src": ":two_files"},
        "src must be a single file for input_format keras, got 2 files",
    ),
    "no_saved_model_pb": (
        tfjs_model,
        {"input_format": "tf_saved_model", "src": ":two_files"},
        "src must contain exactly one saved_model.pb for input_format tf_saved_model, found 0",
    ),
    "stray_src": (
        tfjs_model,
        {"input_format": "tf_saved_model", "src": ":saved_model_and_stray"},
        "every src file must live under tests/analysis/testdata/saved_model (the directory of " +
        "saved_model.pb); tests/analysis/testdata/elsewhere/stray.txt does not",
    ),
    "bad_metadata_name": (
        tfjs_model,
        {"input_format": "keras", "metadata": {"a:b": "testdata/meta.json"}},
        "metadata names must be non-empty and contain no ':' or ',': \"a:b\"",
    ),
    "metadata_two_files": (
        tfjs_model,
        {"input_format": "keras", "metadata": {"x": ":two_json"}},
        "metadata \"x\" must be exactly one JSON file, $PKG:two_json gives 2",
    ),
    "metadata_comma_path": (
        tfjs_model,
        {"input_format": "keras", "metadata": {"x": "testdata/with,comma.json"}},
        "metadata file paths cannot contain ',': tests/analysis/testdata/with,comma.json",
    ),
    # The public macro takes {name: label}, so a name cannot repeat there; the rule's
    # {label: name} attribute can.
    "metadata_name_twice": (
        tfjs_model_rule,
        {"input_format": "keras", "metadata": {"testdata/meta.json": "x", "testdata/meta2.json": "x"}},
        "metadata name \"x\" given twice",
    ),
}

def tfjs_model_failure_tests(src):
    """Per entry of _FAILURES: a `manual` target `<name>_subject` and `<name>_test`.

    Args:
      src: the placeholder model file for entries that do not set their own src.
    """
    for name, (rule_fn, attrs, message) in _FAILURES.items():
        kwargs = {"src": src, "tags": ["manual"]}
        kwargs.update(attrs)
        rule_fn(name = name + "_subject", **kwargs)
        failure_test(
            name = name + "_test",
            message = message,
            target_under_test = name + "_subject",
        )
