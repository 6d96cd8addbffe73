"""Bzlmod module extension (Bazel 6+): the hash-locked pip repository, the toolchain and
the interpreter snapshot conversion actions run on (`@tfjs_python`).

Bazel 4 never loads this file (it has no module extensions); WORKSPACE users call
`tfjs_repositories` from repositories.bzl instead. rules_tfjs's own MODULE.bazel
declares the default install, so a module that only writes `bazel_dep(name =
"rules_tfjs", ...)` gets it; the root module may declare its own `install` with the same
name to change the lock or the interpreter (the root module's tag wins):

    tfjs_pip = use_extension("@rules_tfjs//rules:extensions.bzl", "tfjs_pip")
    tfjs_pip.install(lock = "//requirements:runtime.lock", python_interpreter = "/usr/bin/python3.11")
"""

load("//rules:repositories.bzl", "tfjs_repositories")

_install = tag_class(
    doc = "One hash-locked site-packages repository (`@<name>`), its Python " +
          "toolchain repository (`@<name>_python`) and the interpreter snapshot `@tfjs_python`.",
    attrs = {
        "name": attr.string(default = "tfjs_pip", doc = "Repository name."),
        "lock": attr.label(mandatory = True, doc = "`--require-hashes` requirements file."),
        "python_interpreter": attr.string(
            default = "/usr/bin/python3",
            doc = "Interpreter running pip and the Python toolchain; the " +
                  "`RULES_TFJS_PYTHON` environment variable overrides it.",
        ),
        "shared_install_dir": attr.string(default = "default", doc = "See tfjs_pip_repository."),
    },
)

def _tfjs_pip_impl(module_ctx):
    # module_ctx.modules lists the root module first: its tags win over rules_tfjs's.
    seen = {}
    for mod in module_ctx.modules:
        for tag in mod.tags.install:
            if tag.name in seen:
                continue
            seen[tag.name] = True
            tfjs_repositories(
                name = tag.name,
                lock = tag.lock,
                python_interpreter = tag.python_interpreter,
                shared_install_dir = tag.shared_install_dir,
            )

tfjs_pip = module_extension(
    implementation = _tfjs_pip_impl,
    tag_classes = {"install": _install},
    doc = "Creates the pip, toolchain and interpreter-snapshot repositories (see tfjs_repositories).",
)
