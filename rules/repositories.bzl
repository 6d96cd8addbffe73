"""Repository rules for WORKSPACE users of rules_tfjs.

    load("@rules_tfjs//rules:repositories.bzl", "tfjs_pip_repository")
    tfjs_pip_repository(name = "tfjs_pip", lock = "//requirements:runtime.lock")
    tfjs_python_repository(name = "tfjs_python")
"""

load("//rules/private:pip_repository.bzl", _tfjs_pip_repository = "tfjs_pip_repository")
load("//rules/private:python_repository.bzl", _tfjs_python_repository = "tfjs_python_repository")

tfjs_pip_repository = _tfjs_pip_repository

# The CPython 3.11 snapshot conversions run on (`@tfjs_python`).
tfjs_python_repository = _tfjs_python_repository
