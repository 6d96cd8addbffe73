"""Repository rules for WORKSPACE users of rules_tfjs (MODULE.bazel users: extensions.bzl).

    load("@rules_tfjs//rules:repositories.bzl", "tfjs_repositories")
    tfjs_repositories(lock = "//requirements:runtime.lock")
    register_toolchains("@rules_tfjs//rules/private/python:python3_toolchain")
"""

load("//rules/private:npm_repository.bzl", _tfjs_npm_repository = "tfjs_npm_repository")
load(
    "//rules/private:pip_repository.bzl",
    _tfjs_pip_manifest_repository = "tfjs_pip_manifest_repository",
    _tfjs_pip_repository = "tfjs_pip_repository",
)
load("//rules/private:python_repository.bzl", _tfjs_python_repository = "tfjs_python_repository")
load("//rules/private:python_snapshot.bzl", _tfjs_python_snapshot = "tfjs_python_snapshot")

tfjs_pip_repository = _tfjs_pip_repository
tfjs_pip_manifest_repository = _tfjs_pip_manifest_repository
tfjs_python_repository = _tfjs_python_repository
tfjs_python_snapshot = _tfjs_python_snapshot
tfjs_npm_repository = _tfjs_npm_repository

def tfjs_repositories(name = "tfjs_pip", lock = None, python_interpreter = "/usr/bin/python3", **kwargs):
    """Declares every repository the rules need.

    `@<name>` (pip), `@<name>_manifest` (its content manifest), `@<name>_python` (toolchain), `@tfjs_python` (the interpreter
    snapshot conversion actions run on) and `@tfjs_npm` (@tensorflow/tfjs for
    `tfjs_model_test`).

    All get the same interpreter (`RULES_TFJS_PYTHON` overrides it in all), so the
    wheels pip installs match the Python that runs them. MODULE.bazel's `tfjs_pip`
    extension calls this too, so WORKSPACE and bzlmod create the same repositories.

    Args:
      name: name of the pip repository; the rules expect `tfjs_pip`.
      lock: label of the `--require-hashes` lock file.
      python_interpreter: absolute path of the interpreter (CPython matching the lock).
      **kwargs: further tfjs_pip_repository attributes (shared_install_dir, granular...).
    """
    _tfjs_pip_repository(name = name, lock = lock, python_interpreter = python_interpreter, **kwargs)
    _tfjs_pip_manifest_repository(
        name = name + "_manifest",
        pip_lock_digest = "@%s//:lock.sha256" % name,
        python_snapshot = "@tfjs_python//:BUILD.bazel",
        python_interpreter = python_interpreter,
    )
    _tfjs_python_repository(name = name + "_python", python_interpreter = python_interpreter)
    _tfjs_python_snapshot(name = "tfjs_python", python_interpreter = python_interpreter)
    _tfjs_npm_repository(name = "tfjs_npm")
