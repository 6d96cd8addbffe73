"""End to end in a real browser: the Bazel-built example model runs in headless Chromium.

The page ``examples/web/index.html`` loads tfjs 4.22 from ``tests/js/node_modules`` and
the model over HTTP exactly as a web app would (``tf.loadGraphModel(url)``), so this
checks the served files, the shard URLs and the browser build of tfjs together. The
expected numbers come from TensorFlow running the source ``.h5``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from tfjs_runtime import JS_DIR, require_js_runtime


REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SOURCE_H5 = REPO_ROOT / "examples" / "models" / "mlp_keras2.h5"
BAZEL_OUT = REPO_ROOT / "bazel-bin" / "examples" / "mlp_graph"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "browser.png"
ATOL = 1e-5


def _load_serve_module():
    spec = importlib.util.spec_from_file_location("web_serve", REPO_ROOT / "examples" / "web" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bazel_target_declared() -> bool:
    for name in ("BUILD.bazel", "BUILD"):
        build = REPO_ROOT / "examples" / name
        if build.is_file() and '"mlp_graph"' in build.read_text():
            return True
    return False


def _run(cmd, what: str, timeout: float) -> None:
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{tail}", pytrace=False)


def _tiny_h5(path: Path) -> Path:
    """Stand-in source model while examples/models/mlp_keras2.h5 does not exist yet."""
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    model = tf_keras.Sequential([
        tf_keras.layers.Dense(8, activation="relu", input_shape=(4,), name="hidden"),
        tf_keras.layers.Dense(3, activation="softmax", name="probs"),
    ])
    model.save(path)
    return path


def _convert_with_cli(h5: Path, out: Path) -> Path:
    env_path = os.pathsep.join([str(REPO_ROOT / "converter"), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-c", "import sys; from tfjsconv.cli import console_main; sys.argv[0] = "
           "'tensorflowjs_converter'; console_main()",
           "--input_format=keras", "--output_format=tfjs_graph_model", str(h5), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=env_path))
    if proc.returncode != 0:
        pytest.fail(f"converting {h5.name} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def example_model(tmp_path_factory) -> Tuple[Path, Path, str]:
    """(model dir, source .h5, how the model was obtained)."""
    if SOURCE_H5.is_file() and (BAZEL_OUT / "model.json").is_file():
        return BAZEL_OUT, SOURCE_H5, "bazel-bin (existing)"
    if SOURCE_H5.is_file() and _bazel_target_declared() and shutil.which("bazel"):
        _run(["bazel", "build", "//examples:mlp_graph"], "bazel build //examples:mlp_graph", 1800)
        assert (BAZEL_OUT / "model.json").is_file(), f"bazel built no {BAZEL_OUT}/model.json"
        return BAZEL_OUT, SOURCE_H5, "bazel build"
    tmp = tmp_path_factory.mktemp("browser_model")
    h5 = SOURCE_H5 if SOURCE_H5.is_file() else _tiny_h5(tmp / "tiny_mlp.h5")
    return _convert_with_cli(h5, tmp / "graph"), h5, f"CLI conversion of {h5.name}"


def _require_browser() -> None:
    require_js_runtime()
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser check is required under CI: {reason}", pytrace=False)
        pytest.skip(reason)


def _keras_predict(h5: Path, x: np.ndarray) -> np.ndarray:
    import tf_keras

    model = tf_keras.models.load_model(str(h5), compile=False)
    return np.asarray(model(x, training=False), dtype=np.float32)


@pytest.mark.browser
@pytest.mark.slow
def test_example_model_runs_in_headless_chromium(example_model, record_property) -> None:
    _require_browser()
    model_dir, h5, origin = example_model
    record_property("model_origin", origin)

    import tf_keras

    n_features = tf_keras.models.load_model(str(h5), compile=False).input_shape[-1]
    x = np.random.default_rng(20261125).uniform(-2, 2, (3, n_features)).astype(np.float32)
    expected = _keras_predict(h5, x)

    serve = _load_serve_module()
    server, base = serve.start_server(model_dir)
    try:
        # float32 -> Python float -> JSON is exact, and tfjs rounds back to the same float32.
        query = urllib.parse.urlencode({"model": "model/model.json", "input": json.dumps(x.tolist())})
        proc = subprocess.run(
            ["node", str(JS_DIR / "browser_check.js"), "--url", f"{base}?{query}",
             "--screenshot", str(SCREENSHOT), "--chromium", CHROMIUM],
            cwd=JS_DIR, capture_output=True, text=True, timeout=300,
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
        got, expected, rtol=0, atol=ATOL,
        err_msg=f"model from {origin}; if stale: bazel build //examples:mlp_graph",
    )
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 1000


def _get(url: str) -> Tuple[int, bytes]:
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
        for escape in ("model/../secret.txt", "model/%2e%2e/secret.txt", "model/..%2fsecret.txt",
                       "vendor/../../../../../etc/passwd", "serve.py"):
            assert _get(base + escape)[0] == 404, escape
        if (serve.TFJS_DIST / "tf.min.js").is_file():
            status, body = _get(base + "vendor/tf.min.js")
            assert status == 200 and body == (serve.TFJS_DIST / "tf.min.js").read_bytes()
    finally:
        server.shutdown()
        server.server_close()
