"""Bzlmod module extension (Bazel 6+): the hash-locked pip repository.

Bazel 4 never loads this file (it has no module extensions); WORKSPACE users call
`tfjs_pip_repository` from repositories.bzl instead. In MODULE.bazel:

    tfjs_pip = use_extension("@rules_tfjs//rules:extensions.bzl", "tfjs_pip")
    tfjs_pip.install(name = "tfjs_pip", lock = "//requirements:runtime.lock")
    tfjs_pip.python(name = "tfjs_python")
    use_repo(tfjs_pip, "tfjs_pip", "tfjs_python")
"""

load("//rules/private:pip_repository.bzl", "tfjs_pip_repository")
load("//rules/private:python_repository.bzl", "tfjs_python_repository")

_install = tag_class(
    doc = "One hash-locked site-packages repository.",
    attrs = {
        "name": attr.string(default = "tfjs_pip", doc = "Repository name."),
        "lock": attr.label(mandatory = True, doc = "`--require-hashes` requirements file."),
        "python_interpreter": attr.string(default = "/usr/bin/python3", doc = "Interpreter running pip."),
        "shared_install_dir": attr.string(default = "default", doc = "See tfjs_pip_repository."),
    },
)

_python = tag_class(
    doc = "The CPython 3.11 snapshot conversion actions run on (see tfjs_python_repository).",
    attrs = {
        "name": attr.string(default = "tfjs_python", doc = "Repository name."),
        "python_interpreter": attr.string(default = "/usr/bin/python3.11", doc = "CPython 3.11 to snapshot."),
    },
)

def _tfjs_pip_impl(module_ctx):
    seen = {}
    for mod in module_ctx.modules:
        for tag in mod.tags.install:
            if tag.name in seen:
                continue
            seen[tag.name] = True
            tfjs_pip_repository(
                name = tag.name,
                lock = tag.lock,
                python_interpreter = tag.python_interpreter,
                shared_install_dir = tag.shared_install_dir,
            )
        for tag in mod.tags.python:
            if tag.name in seen:
                continue
            seen[tag.name] = True
            tfjs_python_repository(name = tag.name, python_interpreter = tag.python_interpreter)

tfjs_pip = module_extension(
    implementation = _tfjs_pip_impl,
    tag_classes = {"install": _install, "python": _python},
    doc = "Creates the tfjs_pip_repository and tfjs_python_repository repositories for MODULE.bazel users.",
)
