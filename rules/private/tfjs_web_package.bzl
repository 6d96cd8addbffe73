"""Implementation of `tfjs_web_package`: a converted model as an npm package for web apps.

    load("//rules:defs.bzl", "tfjs_web_package")

    tfjs_web_package(
        name = "mlp_web",            # output: bazel-bin/<pkg>/mlp_web/ (npm pack accepts it)
        model = ":mlp_graph",        # tfjs_model, tfjs_quantized_model or tfjs_migrated_model
        package_name = "@acme/mlp",
        version = "1.0.0",
    )

One `TfjsWebPackage` action in the converter's hermetic runtime (tfjsconv.webpackage):
no conversion, only content-hashed names, precompressed copies, integrity values, the
loader, its typings and a size report. The action prints a one-line size summary.
"""

load(":converter_runtime.bzl", "WEB_PACKAGE_RUNTIME_ATTRS", "converter_command")
load(":formats.bzl", "ACTION_ENV")
load(":providers.bzl", "TfjsModelInfo")

# Output formats a browser loads with the generated loader.
_WEB_FORMATS = ["tfjs_graph_model", "tfjs_layers_model"]

def _tfjs_web_package_impl(ctx):
    info = ctx.attr.model[TfjsModelInfo]
    if info.format not in _WEB_FORMATS:
        fail("%s: model %s is a %s; tfjs_web_package needs a %s" % (
            ctx.label,
            ctx.attr.model.label,
            info.format,
            " or ".join(_WEB_FORMATS),
        ))
    package_name = ctx.attr.package_name or ctx.label.name.replace("_", "-").lower()
    out_dir = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--follow_symlinks")  # sandboxes stage the model's files as symlinks
    args.add("--package_name", package_name)
    args.add("--version", ctx.attr.version)
    args.add(info.model_dir.path)
    args.add(out_dir.path)
    executable, startup, tools, runtime_env = converter_command(ctx, entry = "web_package")
    env = dict(ACTION_ENV)
    env.update(runtime_env)
    ctx.actions.run(
        executable = executable,
        arguments = startup + [args],
        inputs = [info.model_dir],
        tools = tools,
        outputs = [out_dir],
        mnemonic = "TfjsWebPackage",
        progress_message = "Packaging %s for the web as %s@%s" % (ctx.label, package_name, ctx.attr.version),
        env = env,
        execution_requirements = {"block-network": "1"},
    )
    return [DefaultInfo(files = depset([out_dir]), runfiles = ctx.runfiles(files = [out_dir]))]

WEB_PACKAGE_ATTRS = {
    "model": attr.label(
        mandatory = True,
        providers = [TfjsModelInfo],
        doc = "The converted model: a `tfjs_model`, `tfjs_quantized_model` or " +
              "`tfjs_migrated_model` with a tfjs_graph_model or tfjs_layers_model output.",
    ),
    "package_name": attr.string(
        doc = "The npm package name (e.g. `@acme/mobilenet`); default: the target name " +
              "with `_` as `-`.",
    ),
    "version": attr.string(
        mandatory = True,
        doc = "The package version (SemVer, e.g. `1.0.0`).",
    ),
}

tfjs_web_package_rule = rule(
    implementation = _tfjs_web_package_impl,
    attrs = dict(WEB_PACKAGE_ATTRS, **WEB_PACKAGE_RUNTIME_ATTRS),
    doc = "A converted model as one directory `npm pack` accepts: content-hashed shards, " +
          "precompressed .gz/.br copies, integrity.json, package.json, an integrity-checking " +
          "ES-module loader (index.js), typings from the model's signature (index.d.ts) and " +
          "a size report (report.json, REPORT.md).",
)
