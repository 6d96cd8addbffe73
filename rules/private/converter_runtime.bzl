"""How a conversion action starts the converter with nothing but declared inputs.

The action's executable is the snapshot's dynamic loader (`@tfjs_python`), which starts
the snapshot interpreter with `-S` (no site: no host site-packages) on
`tfjs_convert_tool.py`; the converter sources come in as per-file tool inputs, the
interpreter's tree and the locked site-packages as one directory input each, put on
`sys.path` by the tool's `--sys_path` flags. So locally, in a sandbox, in a persistent worker and on a remote
executor the same files are read at the same execroot-relative paths, and an executor
needs only Linux x86_64.

A directory input costs one symlink per sandbox and nothing at analysis or at a cold
start; Bazel tracks it by the directory's own metadata, so the action also takes
`@tfjs_pip_manifest//:runtime.manifest` and `:python.manifest` (the sha256 of every file
in each, listed again at every server start): that is what puts the trees' content into
the action key
(docs/build-cluster.md, "How the runtime reaches an action").

`--define=tfjs_check_hermetic=1` makes the tool fail if any loaded shared object or
imported module came from outside the action's input tree (the remote-execution test
turns it on; it changes the action key, so it is off by default).
"""

CONVERTER_RUNTIME_ATTRS = {
    "_converter_files": attr.label(
        default = Label("//converter:tfjsconv_files"),
        doc = "The tfjsconv sources and data files.",
    ),
    "_python_files": attr.label(
        default = Label("@tfjs_python//:files"),
        doc = "The CPython 3.11 snapshot (binary, stdlib, shared libraries) as one directory input.",
    ),
    "_python_loader": attr.label(
        default = Label("@tfjs_python//:lib/ld-linux-x86-64.so.2"),
        allow_single_file = True,
        doc = "The snapshot's dynamic loader: the actions' executable.",
    ),
    "_python_manifest": attr.label(
        default = Label("@tfjs_pip_manifest//:python.manifest"),
        allow_single_file = True,
        doc = "The sha256 of every file of the snapshot's tree: its content in the action key.",
    ),
    "_site_packages": attr.label(
        default = Label("@tfjs_pip//:files"),
        doc = "The locked site-packages, as one directory input.",
    ),
    "_site_packages_manifest": attr.label(
        default = Label("@tfjs_pip_manifest//:runtime.manifest"),
        allow_single_file = True,
        doc = "The sha256 of every file of that directory: its content in the action key.",
    ),
    "_site_packages_lock": attr.label(
        default = Label("@tfjs_pip//:lock.sha256"),
        allow_single_file = True,
    ),
    "_tool_script": attr.label(
        default = Label("//rules/private:tfjs_convert_tool.py"),
        allow_single_file = True,
    ),
}

def _import_root(files, marker):
    """The directory that holds `marker` (e.g. "tfjsconv/__init__.py") among `files`."""
    for f in files:
        if f.path.endswith("/" + marker) or f.path == marker:
            root = f.path[:len(f.path) - len(marker)].rstrip("/")
            return root or "."
    fail("rules_tfjs: %s not found among the converter's files" % marker)

# Other actions run through the same tool and runtime, with their own sources on
# sys.path: `tfjs_migrated_model`'s TfjsMigrate (tfjs_pb2json) and `tfjs_model_test`'s
# TfjsPredict (TensorFlow's predictions of the source model).
MIGRATION_RUNTIME_ATTRS = dict(
    CONVERTER_RUNTIME_ATTRS,
    _entry_files = attr.label(
        default = Label("//tools/pb2json:tfjsconv_pb2json_files"),
        doc = "The tfjs_pb2json sources (they import the converter's).",
    ),
)

PREDICT_RUNTIME_ATTRS = dict(
    CONVERTER_RUNTIME_ATTRS,
    _entry_files = attr.label(
        default = Label("//rules/private:tfjs_predict_tool.py"),
        allow_files = True,
        doc = "The TfjsPredict tool (it imports the converter's TF set-up).",
    ),
)

# `tfjs_web_package`'s TfjsWebPackage lives in the converter's sources (tfjsconv.webpackage).
WEB_PACKAGE_RUNTIME_ATTRS = CONVERTER_RUNTIME_ATTRS

# entry -> the file among `_entry_files` whose directory is the import root.
_ENTRY_MARKERS = {
    "migrate": "tfjsconv_pb2json/__init__.py",
    "predict": "tfjs_predict_tool.py",
}

def _site_packages_dir(ctx):
    """The directory `@tfjs_pip//:files` holds: the install, as actions see it."""
    return ctx.files._site_packages[0]

def _python_tree(ctx):
    """The directory `@tfjs_python//:files` holds: the snapshot, as actions see it."""
    return ctx.files._python_files[0]

def runtime_tree(ctx):
    """The conversion (worker) action's runtime inputs.

    Args:
      ctx: the rule context (CONVERTER_RUNTIME_ATTRS).

    Returns:
      A depset of the locked site-packages directory and the snapshot's tree.
    """
    return depset([_site_packages_dir(ctx), _python_tree(ctx)])

def converter_command(ctx, entry = "convert"):
    """How a conversion (or migration, or prediction) action starts its tool.

    Args:
      ctx: the rule context; its CONVERTER_RUNTIME_ATTRS name the snapshot, the converter
        sources and the locked site-packages (MIGRATION_RUNTIME_ATTRS or
        PREDICT_RUNTIME_ATTRS add the entry's own sources).
      entry: "convert" (the converter CLI, also as a worker), "migrate" (tfjs_pb2json),
        "predict" (tfjs_predict_tool) or "web_package" (tfjsconv.webpackage's CLI).

    Returns:
      (executable, startup arguments, tool inputs, extra env) for `ctx.actions.run`;
      for "convert", add `runtime_tree(ctx)` to the action's inputs.
    """
    loader = ctx.file._python_loader
    python = _python_tree(ctx).path
    script = ctx.file._tool_script
    converter = ctx.files._converter_files
    own = ctx.files._entry_files if entry in _ENTRY_MARKERS else []

    # Import roots, in sys.path order: the converter first (a worker watches it for
    # changes), the entry's own sources, then the locked site-packages.
    roots = [_import_root(converter, "tfjsconv/__init__.py")]
    if own:
        roots.append(_import_root(own, _ENTRY_MARKERS[entry]))
    roots.append(_site_packages_dir(ctx).path)
    startup = [
        "--library-path",
        python + "/lib",
        python + "/bin/python3.11",
        "-s",
        "-S",
        # No .pyc writes: the site-packages directory is shared and its content is in
        # every action key (see the manifest above); the install compiled it already.
        "-B",
        script.path,
    ] + ["--sys_path=" + root for root in roots]
    if entry != "convert":
        startup.append("--entry=" + entry)
    if ctx.var.get("tfjs_check_hermetic", "0") == "1":
        startup.append("--check_hermetic")
    tools = depset(
        [
            script,
            ctx.file._site_packages_lock,
            ctx.file._site_packages_manifest,
            ctx.file._python_manifest,
            loader,
        ],
        transitive = [
            depset(converter),
            depset(own),
            # The conversion runs as a persistent worker, whose key Bazel computes from the
            # digests of its tools: a directory has none (Bazel 7 fails on it), so there the
            # trees are ordinary inputs (runtime_tree) and the manifests key the worker.
            depset() if entry == "convert" else runtime_tree(ctx),
        ],
    )

    # PYTHONHOME: the snapshot's prefix (it holds bin/python3.11 and lib/python311.zip).
    env = {"PYTHONHOME": python}
    return loader, startup, tools, env
