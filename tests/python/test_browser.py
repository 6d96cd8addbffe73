"""End to end in a real browser: the Bazel-built example model runs in headless Chromium.

The page ``examples/web/index.html`` loads tfjs 4.22 from ``tests/js/node_modules`` and
the model over HTTP exactly as a web app would (``tf.loadGraphModel(url)``), so this
checks the served files, the shard URLs and the browser build of tfjs together. The
expected numbers come from TensorFlow running the source ``.h5``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import tolerances
from checkout import load_script
from tfjs_runtime import JS_DIR, require_js_runtime

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SOURCE_H5 = REPO_ROOT / "examples" / "models" / "mlp_keras2.h5"
BAZEL_OUT = REPO_ROOT / "bazel-bin" / "examples" / "mlp_graph"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "browser.png"


def _load_serve_module():
    return load_script("examples/web/serve.py")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser check is required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def example_model() -> tuple[Path, str]:
    """(model dir, how it was obtained): Bazel's output, built here if missing."""
    _require_browser()  # before a possibly long build
    if (BAZEL_OUT / "model.json").is_file():
        return BAZEL_OUT, "bazel-bin (existing)"
    if shutil.which("bazel") is None:
        _skip_or_fail(f"{BAZEL_OUT} is missing and bazel is not on PATH")
    proc = subprocess.run(
        ["bazel", "build", "//examples:mlp_graph"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(
            f"bazel build //examples:mlp_graph failed (exit {proc.returncode}):\n{tail}", pytrace=False
        )
    assert (BAZEL_OUT / "model.json").is_file(), f"bazel built no {BAZEL_OUT}/model.json"
    return BAZEL_OUT, "bazel build"


def _require_browser() -> None:
    require_js_runtime()
    if not os.access(CHROMIUM, os.X_OK):
        _skip_or_fail(f"{CHROMIUM} is not installed (apt-get install -y chromium)")


@pytest.mark.browser
@pytest.mark.slow
def test_example_model_runs_in_headless_chromium(example_model, record_property, tmp_path) -> None:
    """The Bazel-built mlp_graph in Chromium matches tf_keras on the source .h5, within
    the model's parity bound (``tolerances``: 4x its float32-vs-float64 gap)."""
    _require_browser()
    built, origin = example_model
    # Serve a snapshot: a concurrent `bazel build` may replace bazel-bin mid-test.
    model_dir = Path(shutil.copytree(built, tmp_path / "model"))
    h5 = SOURCE_H5
    record_property("model_origin", origin)

    import tf_keras

    source = tf_keras.models.load_model(str(h5), compile=False)
    x = np.random.default_rng(20261125).uniform(-2, 2, (3, source.input_shape[-1])).astype(np.float32)
    expected = np.asarray(source(x, training=False), dtype=np.float32)
    bound = tolerances.keras_bound(source, [x])

    serve = _load_serve_module()
    server, base = serve.start_server(model_dir)
    try:
        # float32 -> Python float -> JSON is exact, and tfjs rounds back to the same float32.
        query = urllib.parse.urlencode({"model": "model/model.json", "input": json.dumps(x.tolist())})
        proc = subprocess.run(
            [
                "node",
                str(JS_DIR / "browser_check.js"),
                "--url",
                f"{base}?{query}",
                "--screenshot",
                str(SCREENSHOT),
                "--chromium",
                CHROMIUM,
            ],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert proc.stdout.strip(), f"no result from the browser (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], f"page reported an error: {result.get('error')}\n{proc.stderr[-4000:]}"
    assert result["kind"] == "graph" and result["backend"] == "cpu"
    assert result["inputShape"] == list(x.shape)
    (out,) = result["outputs"]
    got = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    assert got.shape == expected.shape
    record_property("max_abs_diff", float(np.max(np.abs(got - expected))))
    np.testing.assert_allclose(
        got,
        expected,
        rtol=0,
        atol=bound,
        err_msg=f"model from {origin}; if stale: bazel build //examples:mlp_graph",
    )
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 1000


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_example_server_serves_only_page_tfjs_and_model(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.json").write_text('{"format": "graph-model"}')
    (tmp_path / "secret.txt").write_text("not for the browser")
    serve = _load_serve_module()
    server, base = serve.start_server(model_dir)
    try:
        assert _get(base + "model/model.json") == (200, b'{"format": "graph-model"}')
        assert _get(base)[0] == 200 and _get(base + "app.js")[0] == 200
        for escape in (
            "model/../secret.txt",
            "model/%2e%2e/secret.txt",
            "model/..%2fsecret.txt",
            "vendor/../../../../../etc/passwd",
            "serve.py",
        ):
            assert _get(base + escape)[0] == 404, escape
        if (serve.TFJS_DIST / "tf.min.js").is_file():
            status, body = _get(base + "vendor/tf.min.js")
            assert status == 200 and body == (serve.TFJS_DIST / "tf.min.js").read_bytes()
    finally:
        server.shutdown()
        server.server_close()
