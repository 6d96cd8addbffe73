"""Implementation of `tfjs_migrated_model`: a legacy tfjs 0.x graph model, migrated to model.json.

    load("//rules:defs.bzl", "tfjs_migrated_model")

    tfjs_migrated_model(
        name = "mobilenet",
        srcs = glob(["legacy/mobilenet/*"]),  # tensorflowjs_model.pb, weights_manifest.json, shards
    )

The output is one directory named after the target holding `model.json` and the
`group*-shard*of*.bin` files. Only the files listed in `srcs` are read, and only the
model's own files (the .pb, the manifest and its shards) are written.
"""

load(":converter_runtime.bzl", "MIGRATION_RUNTIME_ATTRS", "converter_command")
load(":formats.bzl", "ACTION_ENV", "MODEL_JSON")
load(":providers.bzl", "TfjsModelInfo")

_PB = "tensorflowjs_model.pb"
_MANIFEST = "weights_manifest.json"

def _legacy_root(ctx):
    """The directory holding tensorflowjs_model.pb; every src must live under it."""
    files = ctx.files.srcs
    pbs = [f for f in files if f.basename == _PB]
    manifests = [f for f in files if f.basename == _MANIFEST]
    if len(pbs) != 1 or len(manifests) != 1:
        fail("%s: srcs must contain exactly one %s and one %s (found %d and %d)" % (
            ctx.label,
            _PB,
            _MANIFEST,
            len(pbs),
            len(manifests),
        ))
    root = pbs[0].dirname
    if manifests[0].dirname != root:
        fail("%s: %s and %s must be in the same directory" % (ctx.label, _PB, _MANIFEST))
    for f in files:
        if f.root.path != pbs[0].root.path or not f.path.startswith(root + "/"):
            fail("%s: every src must live under %s; %s does not" % (ctx.label, root, f.short_path))
    return root

def _tfjs_migrated_model_impl(ctx):
    root = _legacy_root(ctx)
    out_dir = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--no_extra_files")
    args.add("--overwrite")  # Bazel pre-creates the (empty) output directory.
    args.add("--quiet")
    args.add(root)
    args.add(out_dir.path)

    # The converter's hermetic runtime (the @tfjs_python snapshot, the locked
    # site-packages): the same files locally, in a sandbox and on a remote executor.
    executable, startup, tools, runtime_env = converter_command(ctx, entry = "migrate")
    env = dict(ACTION_ENV)
    env.update(runtime_env)
    ctx.actions.run(
        executable = executable,
        arguments = startup + [args],
        inputs = ctx.files.srcs,
        tools = tools,
        outputs = [out_dir],
        mnemonic = "TfjsMigrate",
        progress_message = "Migrating legacy tfjs model %s" % ctx.label,
        env = env,
        execution_requirements = {"block-network": "1"},
    )
    return [
        DefaultInfo(files = depset([out_dir]), runfiles = ctx.runfiles(files = [out_dir])),
        TfjsModelInfo(
            model_dir = out_dir,
            model_json = out_dir.path + "/" + MODEL_JSON,
            model_file = out_dir.path + "/" + MODEL_JSON,
            format = "tfjs_graph_model",
            input_format = "tfjs_legacy_graph_model",
            quantization = {},
            # The legacy shards are kept as they are: no shard size was chosen here.
            weight_shard_size_bytes = None,
        ),
    ]

tfjs_migrated_model_rule = rule(
    implementation = _tfjs_migrated_model_impl,
    attrs = dict(
        {
            "srcs": attr.label_list(
                mandatory = True,
                allow_files = True,
                doc = "The legacy model's files: tensorflowjs_model.pb, weights_manifest.json " +
                      "and every shard the manifest lists (all under one directory).",
            ),
        },
        **MIGRATION_RUNTIME_ATTRS
    ),
    provides = [TfjsModelInfo],
    doc = "Migrates a legacy tfjs 0.x graph model to the current model.json format.",
)
