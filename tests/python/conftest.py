"""Shared pytest configuration: markers and the session-wide tfjs runtime fixture."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent.parent

# Tests import the package from the source tree even without the editable install,
# and import the helper modules that live next to this file.
for p in (REPO_ROOT / "converter", TESTS_DIR):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tfjs_runtime import JS_DIR, TfjsRuntime, node_modules_present  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tfjs: runs models in the real @tensorflow/tfjs runtime (Node)")
    config.addinivalue_line("markers", "browser: drives headless Chromium through puppeteer-core")
    config.addinivalue_line("markers", "bazel: runs Bazel")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def _missing_runtime_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not node_modules_present():
        return f"{JS_DIR}/node_modules is missing (run: npm ci --prefix tests/js)"
    return None


def require_js_runtime() -> None:
    """Skip locally when the JS side is not installed; under CI that is a failure."""
    reason = _missing_runtime_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the tfjs runtime is required under CI: {reason}", pytrace=False)
    pytest.skip(f"tfjs runtime not available: {reason}")


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
def repo_root() -> Path:
    return REPO_ROOT
