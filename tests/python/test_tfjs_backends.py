"""tfjs backends: converted models on cpu, wasm and webgl (headless Chromium) match TF.

Covers ``tfjs_backends`` (the Python helper the corpus uses) and the webgl path of
``tfjs_model_test``'s runner (``rules/private/tfjs_model_test_runner.js``, run here with
Node directly): that webgl really ran, on float32 textures, and that a wrong model fails.
Expected values are TensorFlow's predictions of the source model; the bound is
``tolerances.backend_tolerance`` (4x the model's float32-vs-float64 spread, x6 on webgl
for GLSL's looser division/exp/log).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tolerances
from tfjs_backends import BACKENDS, CHROMIUM
from tfjs_runtime import NODE_MODULES

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "rules" / "private" / "tfjs_model_test_runner.js"
BROWSER_JS = REPO / "rules" / "private" / "tfjs_browser.js"

pytestmark = [pytest.mark.tfjs, pytest.mark.browser]


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> dict:
    """A small tf_keras MLP (relu, tanh, softmax: webgl's exp/division paths) converted
    to both tfjs formats, with TF's float32 and float64 predictions on a batch of 4."""
    import coverage_corpus as cc
    import tf_keras

    from tfjsconv import api

    root = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(2026_12_07)
    inp = tf_keras.Input((6,), name="x")
    h = tf_keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    h = tf_keras.layers.Dense(8, activation="tanh", name="squash")(h)
    out = tf_keras.layers.Dense(5, activation="softmax", name="probs")(h)
    model = tf_keras.Model(inp, out)
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in model.get_weights()])
    h5 = root / "mlp.h5"
    model.save(h5)
    x = rng.uniform(-2, 2, (4, 6)).astype(np.float32)
    dirs = {}
    for kind, fmt in (("graph", "tfjs_graph_model"), ("layers", "tfjs_layers_model")):
        dirs[kind] = Path(api.convert_keras(str(h5), str(root / kind), output_format=fmt))
    ref32 = cc.predict(model, [x])
    ref64 = cc.float64_predictions(tf_keras, model, [x])
    return {"dirs": dirs, "x": x, "ref32": ref32, "ref64": ref64, "root": root}


def test_webgl_page_runs_tfjs_webgl_on_float32_textures(tfjs_backends) -> None:
    info = tfjs_backends.browser_info()
    assert info["tfjs"] == "4.22.0"
    assert info["backend"] == "webgl"  # tf.getBackend() in the page
    assert info["webglVersion"] == 2
    # float16 textures would lose ~3 digits; the page refuses to run without float32.
    assert info["float32Capable"] is True and info["float32Enabled"] is True
    assert "SwiftShader" in info["renderer"]


def test_webgl_page_refuses_float16_textures(tfjs_backends) -> None:  # skips without Chromium
    """The float32 requirement is enforced: with WEBGL_FORCE_F16_TEXTURES (a test-only
    switch of tfjs_browser.js) the browser does not start and says why."""
    script = (
        "const {Browser} = require(process.argv[1]);"
        "Browser.start({chromium: process.argv[2], tfjsScript: process.argv[3], forceF16: true}).then("
        "  async (b) => { await b.close(); console.log('started'); process.exit(0); },"
        "  (e) => { console.log(e.message); process.exit(3); });"
    )
    tf_min = NODE_MODULES / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
    proc = subprocess.run(
        ["node", "-e", script, str(BROWSER_JS), CHROMIUM, str(tf_min)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr[-2000:]
    assert "WEBGL_FORCE_F16_TEXTURES is set: tfjs would compute in float16" in proc.stdout


@pytest.mark.parametrize("kind", ["graph", "layers"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_converted_model_matches_tf_on_backend(tfjs_backends, case, kind: str, backend: str) -> None:
    (got,) = tfjs_backends.run_model(case["dirs"][kind], kind, {"x": case["x"]}, backend)
    tol, why = tolerances.backend_tolerance(case["ref32"], case["ref64"], backend)
    diff = tolerances.max_diff(got, case["ref32"][0])
    assert diff <= tol, f"{kind} on {backend}: max |tfjs - TF| = {diff:.3g} > {tol:.3g} ({why})"


def _run_runner(model_dir: Path, case: dict, tmp_path: Path, atol: float) -> subprocess.CompletedProcess:
    """tfjs_model_test's runner on webgl only, with TF's predictions as expected outputs."""
    x, (want,) = case["x"], case["ref32"]
    inputs = tmp_path / "inputs.json"
    inputs.write_text(
        json.dumps({"inputs": [{"shape": list(x.shape), "dtype": "float32", "data": x.ravel().tolist()}]})
    )
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"outputs": [{"shape": list(want.shape), "data": want.ravel().tolist()}]}))
    cmd = ["node", str(RUNNER), "--model", str(model_dir / "model.json"), "--kind", "graph"]
    cmd += ["--inputs", str(inputs), "--expected", str(expected), "--backends", "webgl"]
    cmd += ["--atol", repr(atol), "--rtol", "0", "--chromium", CHROMIUM]
    env = {"PATH": "/usr/bin:/bin", "NODE_PATH": str(NODE_MODULES), "TEST_TMPDIR": str(tmp_path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_model_test_runner_webgl_passes_and_fails_on_a_tampered_weight(
    tfjs_backends,  # skips without Chromium
    case,
    tmp_path: Path,
) -> None:
    tol, _ = tolerances.backend_tolerance(case["ref32"], case["ref64"], "webgl")
    good = _run_runner(case["dirs"]["graph"], case, tmp_path, tol)
    assert good.returncode == 0, good.stdout + good.stderr[-3000:]
    assert "PASS [webgl]" in good.stdout and "WEBGL_RENDER_FLOAT32_CAPABLE=true" in good.stdout, good.stdout

    # Same model, one kernel row shifted by 0.5: every output moves far beyond the bound.
    bad_dir = Path(shutil.copytree(case["dirs"]["graph"], tmp_path / "tampered"))
    manifest = json.loads((bad_dir / "model.json").read_text())["weightsManifest"]
    first = manifest[0]["weights"][0]
    assert first["dtype"] == "float32" and "quantization" not in first
    shard = bad_dir / manifest[0]["paths"][0]
    data = bytearray(shard.read_bytes())
    row = np.frombuffer(bytes(data[: 4 * first["shape"][-1]]), "<f4") + np.float32(0.5)
    data[: row.nbytes] = row.astype("<f4").tobytes()
    shard.write_bytes(bytes(data))
    bad = _run_runner(bad_dir, case, tmp_path, tol)
    assert bad.returncode == 1, bad.stdout + bad.stderr[-3000:]
    assert "FAIL [webgl]" in bad.stdout and "values outside atol=" in bad.stdout, bad.stdout


@pytest.mark.parametrize("kind", ["graph", "layers"])
def test_a_model_of_many_large_shards_loads_on_webgl(tfjs_backends, tmp_path, kind: str) -> None:
    """12 shards of 4 MB: tfjs awaits every shard's response before reading a body, and
    Chromium opens 6 HTTP/1.1 connections per host, so without the page reading each
    file whole the load never finished (tfjs_browser_page.js)."""
    import tf_keras

    from tfjsconv import api

    rng = np.random.default_rng(12)
    inp = tf_keras.Input((4096,), name="x")
    model = tf_keras.Model(inp, tf_keras.layers.Dense(3000, name="wide")(inp))
    model.set_weights([rng.normal(0, 0.02, w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "wide.h5")
    fmt = "tfjs_graph_model" if kind == "graph" else "tfjs_layers_model"
    out = Path(api.convert_keras(str(tmp_path / "wide.h5"), str(tmp_path / kind), output_format=fmt))
    assert len(list(out.glob("group1-shard*of*.bin"))) >= 12
    x = rng.uniform(-1, 1, (1, 4096)).astype(np.float32)
    (got,) = tfjs_backends.run_model(out, kind, {"x": x}, "webgl")
    want64 = x.astype(np.float64) @ model.get_weights()[0].astype(np.float64) + model.get_weights()[1]
    # A 4096-term dot product in float32 (TF) or GLSL float (webgl): the backend bound of
    # its own float32 run against float64 (tolerances.backend_tolerance's rule).
    tol, why = tolerances.backend_tolerance([want64.astype(np.float32)], [want64], "webgl")
    assert tolerances.max_diff(got, want64) <= tol, why
