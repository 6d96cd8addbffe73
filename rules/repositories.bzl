"""Repository rules for WORKSPACE users of rules_tfjs.

    load("@rules_tfjs//rules:repositories.bzl", "tfjs_pip_repository")
    tfjs_pip_repository(name = "tfjs_pip", lock = "//requirements:runtime.lock")
"""

load("//rules/private:pip_repository.bzl", _tfjs_pip_repository = "tfjs_pip_repository")

tfjs_pip_repository = _tfjs_pip_repository
