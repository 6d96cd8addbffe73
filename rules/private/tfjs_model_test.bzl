"""Implementation of `tfjs_model_test`: run a converted model in the real TensorFlow.js runtime."""

load(":converter_runtime.bzl", "PREDICT_RUNTIME_ATTRS", "converter_command")
load(":formats.bzl", "ACTION_ENV")
load(":providers.bzl", "TfjsModelInfo")

# tfjs_model output format -> the tfjs loader that reads it.
_KINDS = {
    "tfjs_graph_model": "graph",
    "tfjs_layers_model": "layers",
}

# Source-model formats whose predictions the TfjsPredict action can compute.
REFERENCE_FORMATS = ["keras", "keras_keras", "tf_saved_model"]

_NUMBER_CHARS = "0123456789.eE+-"

# The tfjs backends a test can run on: cpu and wasm in Node, webgl in headless Chromium.
BACKENDS = ["cpu", "wasm", "webgl"]

def _fail(ctx, msg):
    fail("%s: %s" % (ctx.label, msg))

def _check_tolerance(ctx, name, value):
    """Bazel has no float attributes: accept a non-negative decimal such as "1e-5"."""
    ok = value != "" and value[0] in "0123456789."
    for ch in value.elems():
        if ch not in _NUMBER_CHARS:
            ok = False
    if not ok:
        _fail(ctx, "%s must be a non-negative number such as \"1e-5\", got %r" % (name, value))

def _backends(ctx):
    """Checked `backends` and their (atol, rtol) strings, in the order they run."""
    backends = ctx.attr.backends
    if not backends:
        _fail(ctx, "backends must name at least one of: %s" % ", ".join(BACKENDS))
    for i, b in enumerate(backends):
        if b not in BACKENDS:
            _fail(ctx, "unknown backend %r in backends; choose from: %s" % (b, ", ".join(BACKENDS)))
        if b in backends[:i]:
            _fail(ctx, "backend %r is listed twice in backends" % b)
    for name, per_backend in [("backend_atol", ctx.attr.backend_atol), ("backend_rtol", ctx.attr.backend_rtol)]:
        for b, value in per_backend.items():
            if b not in backends:
                _fail(ctx, "%s names backend %r, which is not in backends %r" % (name, b, backends))
            _check_tolerance(ctx, "%s[%r]" % (name, b), value)
    return [
        (b, ctx.attr.backend_atol.get(b, ctx.attr.atol), ctx.attr.backend_rtol.get(b, ctx.attr.rtol))
        for b in backends
        if not (b == "webgl" and _webgl_off(ctx))
    ]

def _webgl_off(ctx):
    """`--define=rules_tfjs_webgl=off`: a machine without Chromium runs the other backends."""
    return ctx.var.get("rules_tfjs_webgl") == "off"

def _reference_path(ctx):
    """The path the predict tool reads: one file, or the directory of saved_model.pb."""
    files = ctx.files.reference_model
    if len(files) == 1:
        return files[0].path
    markers = [f for f in files if f.basename == "saved_model.pb"]
    if len(markers) != 1:
        _fail(ctx, "reference_model must be one file or a SavedModel file set with exactly one saved_model.pb, found %d" % len(markers))
    return markers[0].dirname

def _expected_outputs(ctx, info):
    if ctx.file.expected and ctx.attr.reference_model:
        _fail(ctx, "give either expected or reference_model, not both")
    if ctx.file.expected:
        return ctx.file.expected
    if not ctx.attr.reference_model:
        _fail(ctx, "give expected (a JSON file of outputs) or reference_model (TF computes them)")
    fmt = ctx.attr.reference_format or info.input_format
    if fmt not in REFERENCE_FORMATS:
        _fail(ctx, "reference_format %r cannot compute predictions; choose one of: %s" % (
            fmt,
            ", ".join(REFERENCE_FORMATS),
        ))
    expected = ctx.actions.declare_file(ctx.label.name + ".expected.json")
    args = ctx.actions.args()
    args.add("--format", fmt)
    args.add("--model", _reference_path(ctx))
    args.add("--inputs", ctx.file.inputs)
    args.add("--output", expected)
    if ctx.attr.signature_name:
        args.add("--signature_name", ctx.attr.signature_name)

    # The converter's hermetic runtime: the same TF and Keras as the conversion, and
    # runnable on a remote executor.
    executable, startup, tools, runtime_env = converter_command(ctx, entry = "predict")
    env = dict(ACTION_ENV)
    env.update(runtime_env)
    ctx.actions.run(
        executable = executable,
        arguments = startup + [args],
        inputs = depset(ctx.files.reference_model + [ctx.file.inputs]),
        tools = tools,
        outputs = [expected],
        mnemonic = "TfjsPredict",
        progress_message = "Computing TensorFlow's predictions of %s for %s" % (
            ctx.attr.reference_model.label,
            ctx.label,
        ),
        env = env,
        execution_requirements = {"block-network": "1"},
    )
    return expected

def _runfiles_path(f):
    """Path of `f` relative to the test's working directory (the main repo's runfiles)."""
    return f.short_path

def _tfjs_model_test_impl(ctx):
    info = ctx.attr.model[TfjsModelInfo]
    kind = _KINDS.get(info.format)
    if kind == None:
        _fail(ctx, "model %s is a %s; tfjs_model_test runs tfjs_graph_model and tfjs_layers_model outputs" % (
            ctx.attr.model.label,
            info.format,
        ))
    _check_tolerance(ctx, "atol", ctx.attr.atol)
    _check_tolerance(ctx, "rtol", ctx.attr.rtol)
    checks = _backends(ctx)
    expected = _expected_outputs(ctx, info)

    if not ctx.attr.node.startswith("/"):
        _fail(ctx, "node must be an absolute path, got %r" % ctx.attr.node)
    browser = []
    note = []
    if "webgl" in ctx.attr.backends:
        if not ctx.attr.chromium.startswith("/"):
            _fail(ctx, "chromium must be an absolute path, got %r" % ctx.attr.chromium)
        if _webgl_off(ctx):
            note = ["echo 'webgl: not run (--define=rules_tfjs_webgl=off)'"]
        else:
            browser = [" --chromium %s" % ctx.attr.chromium]
    node_modules = [f for f in ctx.files._node_modules if f.basename == "node_modules"]

    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        output = script,
        is_executable = True,
        content = "\n".join([
            "#!/bin/sh",
            "# Generated by tfjs_model_test (%s)." % ctx.label,
            "set -eu",
            "here=\"$PWD\"",
        ] + note + ([] if checks else ["exit 0"]) + [
            "NODE_PATH=\"$here/%s\" exec %s \"$here/%s\" \\" % (_runfiles_path(node_modules[0]), ctx.attr.node, _runfiles_path(ctx.file._runner)),
            "  --model \"$here/%s/model.json\" --kind %s \\" % (_runfiles_path(info.model_dir), kind),
            "  --inputs \"$here/%s\" --expected \"$here/%s\" \\" % (_runfiles_path(ctx.file.inputs), _runfiles_path(expected)),
            "  --backends %s --atol %s --rtol %s%s" % (
                ",".join([b for b, _, _ in checks]),
                ",".join([a for _, a, _ in checks]),
                ",".join([r for _, _, r in checks]),
                "".join(browser),
            ),
            "",
        ]),
    )
    runfiles = ctx.runfiles(files = [ctx.file._runner, info.model_dir, ctx.file.inputs, expected] + ctx.files._browser + ctx.files._node_modules)
    return [DefaultInfo(executable = script, runfiles = runfiles)]

tfjs_model_test = rule(
    implementation = _tfjs_model_test_impl,
    test = True,
    doc = """Runs a `tfjs_model` output in `@tensorflow/tfjs` 4.22 on each of `backends` and compares its outputs.

The test loads `model.json` with `tf.loadGraphModel` / `tf.loadLayersModel` (chosen from
the model's format), predicts on `inputs` and passes when, on every backend, every output
value satisfies `|tfjs - expected| <= atol + rtol * |expected|` (per-backend tolerances:
`backend_atol` / `backend_rtol`). Expected outputs are a JSON file (`expected`) or
TensorFlow's own predictions of the source model (`reference_model`), computed by a
sandboxed `TfjsPredict` action.

What the test runs on: `cpu` and `wasm` run in the host's Node (`node`, Debian's
`nodejs`); `webgl` runs in the host's Chromium (`chromium`, Debian's `chromium`), started
headless once per test with WebGL 2 on SwiftShader (a CPU rasterizer, so no GPU is needed
and results do not depend on one), a fresh profile under `TEST_TMPDIR`, and a page served
on 127.0.0.1 by the test itself. The tfjs packages (Node and the browser build
`tf.min.js`) come from `@tfjs_npm` (`tfjs_npm_repository`, a locked `npm ci` at fetch
time), so the test action needs no network. Node and Chromium are host binaries named by
absolute path, not declared inputs: changing them does not invalidate a cached test
result (`bazel test --nocache_test_results` re-runs it). On webgl the test requires float32 textures
(`WEBGL_RENDER_FLOAT32_CAPABLE`; it sets `WEBGL_FORCE_F16_TEXTURES=false`) and fails
rather than let tfjs fall back to float16; the log names the backend, WebGL version and
renderer that ran. On a machine without Chromium, `--define=rules_tfjs_webgl=off` runs
the other backends and the log says webgl did not run.

JSON formats: inputs `{"inputs": [{"name"?, "shape", "dtype"?, "data": [flat]}]}`;
outputs `{"outputs": [{"name"?, "shape", "data": [flat]}]}` (graph models match
outputs by name when every expected output has one, otherwise by position).
""",
    attrs = dict({
        "model": attr.label(
            mandatory = True,
            providers = [TfjsModelInfo],
            doc = "The `tfjs_model` / `tfjs_quantized_model` target to run (output format " +
                  "`tfjs_graph_model` or `tfjs_layers_model`).",
        ),
        "inputs": attr.label(
            mandatory = True,
            allow_single_file = [".json"],
            doc = "JSON file of the input tensors, in the model's input order (or named).",
        ),
        "expected": attr.label(
            allow_single_file = [".json"],
            doc = "JSON file of the expected outputs. Give this or `reference_model`.",
        ),
        "reference_model": attr.label(
            allow_files = True,
            doc = "The source model (a Keras `.h5`/`.keras` file, or a SavedModel filegroup) " +
                  "whose TensorFlow predictions on `inputs` are the expected outputs.",
        ),
        "reference_format": attr.string(
            default = "",
            doc = "Format of `reference_model`: " + ", ".join(REFERENCE_FORMATS) +
                  "; empty = the model's `input_format`.",
        ),
        "signature_name": attr.string(
            default = "",
            doc = "SavedModel signature of `reference_model` (default `serving_default`).",
        ),
        "atol": attr.string(
            default = "1e-5",
            doc = "Absolute tolerance (a decimal string; Bazel has no float attributes). Give " +
                  "its reason next to the target, e.g. a float32-vs-float64 spread or a " +
                  "quantization bound.",
        ),
        "rtol": attr.string(
            default = "0",
            doc = "Relative tolerance, applied to |expected| (a decimal string).",
        ),
        "backends": attr.string_list(
            default = ["cpu"],
            doc = "The tfjs backends to run on, each checked against the expected outputs: " +
                  "`cpu` (pure JS, Node), `wasm` (Node) and `webgl` (headless Chromium, " +
                  "float32 textures).",
        ),
        "backend_atol": attr.string_dict(
            default = {},
            doc = "Absolute tolerance per backend (e.g. `{\"webgl\": \"2e-6\"}`), replacing " +
                  "`atol` on that backend. Give the bound's reason next to the target: webgl " +
                  "evaluates transcendental functions with GLSL ES 3.00 precision (e.g. `exp` " +
                  "within 3 + 2|x| ulp), looser than JS `Math` rounded to float32.",
        ),
        "backend_rtol": attr.string_dict(
            default = {},
            doc = "Relative tolerance per backend, replacing `rtol` on that backend.",
        ),
        "chromium": attr.string(
            default = "/usr/bin/chromium",
            doc = "Absolute path of Chromium (Debian's `chromium`), used when `backends` has `webgl`.",
        ),
        "node": attr.string(
            default = "/usr/bin/node",
            doc = "Absolute path of Node (Debian's `nodejs`, 18 or newer).",
        ),
        "_runner": attr.label(
            default = Label("//rules/private:tfjs_model_test_runner.js"),
            allow_single_file = True,
        ),
        "_browser": attr.label_list(
            default = [
                Label("//rules/private:tfjs_browser.js"),
                Label("//rules/private:tfjs_browser_page.js"),
            ],
            allow_files = True,
        ),
        "_node_modules": attr.label(
            default = Label("@tfjs_npm//:runtime"),
            allow_files = True,
        ),
    }, **PREDICT_RUNTIME_ATTRS),
)
