"""Shared pytest configuration: markers and the session-wide tfjs runtime fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# pyproject.toml's pytest `pythonpath` puts converter/, tools/* and this directory on
# sys.path, so the packages come from the source tree even without an install.
from tfjsconv import tf_env

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent.parent

# Whichever test module imports TensorFlow first, the process gets the converter's TF
# environment (oneDNN off, quiet logs): in-process conversions then match the CLI's
# byte for byte whatever the order or subset of tests.
tf_env.configure()

from tfjs_backends import TfjsBackends, require_browser  # noqa: E402
from tfjs_runtime import TfjsRuntime, require_js_runtime  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tfjs: runs models in the real @tensorflow/tfjs runtime (Node)")
    config.addinivalue_line("markers", "browser: drives headless Chromium through puppeteer-core")
    config.addinivalue_line("markers", "bazel: runs Bazel")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def tfjs():
    """One Node process running @tensorflow/tfjs 4.22 for the whole session."""
    require_js_runtime()
    runtime = TfjsRuntime()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def tfjs_backends(tfjs):
    """Any model on cpu, wasm or webgl (``tfjs_backends.TfjsBackends``): conftest's Node
    runtime plus one headless Chromium for the session, started at the first webgl run."""
    require_browser()
    backends = TfjsBackends(node=tfjs)
    try:
        yield backends
    finally:
        backends.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
