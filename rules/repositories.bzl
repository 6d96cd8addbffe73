"""Repository rules for WORKSPACE users of rules_tfjs.

    load("@rules_tfjs//rules:repositories.bzl", "tfjs_pip_repository")
    tfjs_pip_repository(name = "tfjs_pip", lock = "//requirements:runtime.lock")
    tfjs_npm_repository(name = "tfjs_npm")  # @tensorflow/tfjs for tfjs_model_test
"""

load("//rules/private:npm_repository.bzl", _tfjs_npm_repository = "tfjs_npm_repository")
load("//rules/private:pip_repository.bzl", _tfjs_pip_repository = "tfjs_pip_repository")

tfjs_pip_repository = _tfjs_pip_repository

tfjs_npm_repository = _tfjs_npm_repository
