"""The runtime harness itself, proven on models written by hand (no converter involved).

Each model.json and its weight bytes are built here from the published format, so a
pass means the harness loads files from disk, feeds inputs and returns outputs
faithfully; the expected numbers come from numpy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tfjs_runtime
from tfjs_runtime import HarnessDied, TfjsError, TfjsRuntime, require_js_runtime

pytestmark = pytest.mark.tfjs

BACKENDS = ["cpu", "wasm"]

W = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]], dtype=np.float32)
B = np.array([0.125, -4.0], dtype=np.float32)
X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]], dtype=np.float32)


def _dim(*sizes):
    return {"dim": [{"size": str(s)} for s in sizes]}


def _float_attr():
    return {"type": "DT_FLOAT"}


def write_affine_graph_model(out: Path, *, with_signature: bool) -> Path:
    """y = x @ W + b as a tfjs graph model: Placeholder, two Consts, MatMul, AddV2."""
    out.mkdir(parents=True, exist_ok=True)
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": _float_attr(), "shape": {"shape": _dim(-1, 3)}}},
        {
            "name": "W",
            "op": "Const",
            "attr": {
                "dtype": _float_attr(),
                "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": _dim(3, 2)}},
            },
        },
        {
            "name": "b",
            "op": "Const",
            "attr": {
                "dtype": _float_attr(),
                "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": _dim(2)}},
            },
        },
        {
            "name": "MatMul",
            "op": "MatMul",
            "input": ["x", "W"],
            "attr": {"T": _float_attr(), "transpose_a": {"b": False}, "transpose_b": {"b": False}},
        },
        {"name": "y", "op": "AddV2", "input": ["MatMul", "b"], "attr": {"T": _float_attr()}},
        {"name": "Identity", "op": "Identity", "input": ["y"], "attr": {"T": _float_attr()}},
    ]
    model = {
        "format": "graph-model",
        "generatedBy": "hand",
        "convertedBy": "test_tfjs_runtime",
        "modelTopology": {"node": nodes, "versions": {"producer": 1}},
        "weightsManifest": [
            {
                "paths": ["group1-shard1of1.bin"],
                "weights": [
                    {"name": "W", "shape": [3, 2], "dtype": "float32"},
                    {"name": "b", "shape": [2], "dtype": "float32"},
                ],
            }
        ],
    }
    if with_signature:
        model["signature"] = {
            "inputs": {"features": {"name": "x:0", "dtype": "DT_FLOAT", "tensorShape": _dim(-1, 3)}},
            "outputs": {"scores": {"name": "Identity:0", "dtype": "DT_FLOAT", "tensorShape": _dim(-1, 2)}},
        }
    (out / "model.json").write_text(json.dumps(model))
    # Little-endian float32, W then b, exactly as listed in the manifest.
    (out / "group1-shard1of1.bin").write_bytes(W.astype("<f4").tobytes() + B.astype("<f4").tobytes())
    return out


def write_dense_layers_model(out: Path, *, shards: int = 1) -> Path:
    """A Keras-2-style Sequential([Dense(2, input_shape=(3,))]) as a tfjs layers model."""
    out.mkdir(parents=True, exist_ok=True)
    dense = {
        "class_name": "Dense",
        "config": {
            "name": "dense",
            "trainable": True,
            "batch_input_shape": [None, 3],
            "dtype": "float32",
            "units": 2,
            "activation": "linear",
            "use_bias": True,
            "kernel_initializer": {"class_name": "Zeros", "config": {}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }
    model = {
        "format": "layers-model",
        "generatedBy": "hand",
        "convertedBy": "test_tfjs_runtime",
        "modelTopology": {
            "keras_version": "2.21.0",
            "backend": "tensorflow",
            "model_config": {"class_name": "Sequential", "config": {"name": "seq", "layers": [dense]}},
        },
    }
    data = W.astype("<f4").tobytes() + B.astype("<f4").tobytes()
    # Split the bytes across shards at arbitrary points: tfjs concatenates a group's shards.
    cuts = [len(data) * i // shards for i in range(shards + 1)]
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    for i, p in enumerate(paths):
        (out / p).write_bytes(data[cuts[i] : cuts[i + 1]])
    model["weightsManifest"] = [
        {
            "paths": paths,
            "weights": [
                {"name": "dense/kernel", "shape": [3, 2], "dtype": "float32"},
                {"name": "dense/bias", "shape": [2], "dtype": "float32"},
            ],
        }
    ]
    (out / "model.json").write_text(json.dumps(model))
    return out


def expected() -> np.ndarray:
    # Hand check of the first row: [1*1 + 2*0.5 + 3*-1.5 + 0.125, 1*-2 + 2*3 + 3*0.25 - 4]
    first = np.array([1.0 + 1.0 - 4.5 + 0.125, -2.0 + 6.0 + 0.75 - 4.0], dtype=np.float32)
    y = X @ W + B
    np.testing.assert_array_equal(y[0], first)
    return y


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_model_positional(tfjs: TfjsRuntime, tmp_path: Path, backend: str) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    (y,) = tfjs.predict(model, [X], kind="graph", backend=backend)
    assert y.dtype == np.float32 and y.shape == (2, 2)
    np.testing.assert_allclose(y, expected(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_model_inputs_by_signature_name(tfjs: TfjsRuntime, tmp_path: Path, backend: str) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=True)
    answer = tfjs.run(model, {"features": X}, kind="graph", backend=backend)
    assert answer["backend"] == backend
    assert [o["name"] for o in answer["outputs"]] == ["scores"]
    np.testing.assert_allclose(answer["arrays"][0], expected(), rtol=0, atol=1e-6)


def test_graph_model_named_intermediate_output(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    (mm,) = tfjs.predict(model, {"x": X}, kind="graph", outputs=["MatMul"])
    np.testing.assert_allclose(mm, X @ W, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layers_model_dense(tfjs: TfjsRuntime, tmp_path: Path, backend: str) -> None:
    model = write_dense_layers_model(tmp_path / "l", shards=3)
    answer = tfjs.run(model, {"dense_input": X}, kind="layers", backend=backend)
    assert answer["backend"] == backend
    assert [o["name"] for o in answer["outputs"]] == ["dense"]
    (y,) = answer["arrays"]
    np.testing.assert_allclose(y, expected(), rtol=0, atol=1e-6)


def write_passthrough_graph_model(out: Path) -> Path:
    """Three Placeholders (string, int32, bool) each returned through an Identity."""
    out.mkdir(parents=True, exist_ok=True)
    nodes = []
    for name, dt in (("s", "DT_STRING"), ("i", "DT_INT32"), ("b", "DT_BOOL")):
        nodes.append(
            {"name": name, "op": "Placeholder", "attr": {"dtype": {"type": dt}, "shape": {"shape": _dim(-1)}}}
        )
        nodes.append({"name": f"{name}_out", "op": "Identity", "input": [name], "attr": {"T": {"type": dt}}})
    model = {
        "format": "graph-model",
        "generatedBy": "hand",
        "convertedBy": "test_tfjs_runtime",
        "modelTopology": {"node": nodes, "versions": {"producer": 1}},
        "weightsManifest": [],
    }
    (out / "model.json").write_text(json.dumps(model))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_string_int_bool_transport(tfjs: TfjsRuntime, tmp_path: Path, backend: str) -> None:
    model = write_passthrough_graph_model(tmp_path / "p")
    s = np.array(["héllo", "", "a\nb"], dtype=object)
    i = np.array([-(2**31), 0, 2**31 - 1], dtype=np.int64)
    b = np.array([True, False, True])
    got = tfjs.predict(
        model, {"s": s, "i": i, "b": b}, kind="graph", backend=backend, outputs=["s_out", "i_out", "b_out"]
    )
    assert got[0].tolist() == [v.encode("utf-8") for v in s]
    assert got[1].dtype == np.int32 and got[1].tolist() == i.tolist()
    assert got[2].dtype == np.bool_ and got[2].tolist() == b.tolist()


def test_int_inputs_outside_int32_are_refused(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_passthrough_graph_model(tmp_path / "p")
    with pytest.raises(ValueError, match="int32"):
        tfjs.predict(model, {"i": np.array([2**31], dtype=np.int64)}, kind="graph", outputs=["i_out"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_predictions_do_not_leak_tensors(tfjs: TfjsRuntime, tmp_path: Path, backend: str) -> None:
    graph = write_affine_graph_model(tmp_path / "g", with_signature=False)
    layers = write_dense_layers_model(tmp_path / "l")
    for _ in range(2):  # the first round loads and caches the models
        tfjs.predict(graph, [X], kind="graph", backend=backend)
        tfjs.predict(layers, [X], kind="layers", backend=backend)
    before = tfjs.memory()["numTensors"]
    for _ in range(3):
        tfjs.predict(graph, [X], kind="graph", backend=backend)
        tfjs.predict(layers, [X], kind="layers", backend=backend)
    assert tfjs.memory()["numTensors"] == before


def test_inputs_travel_bit_exact(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    # With W = identity and b = 0 the output must be the input, bit for bit, including
    # values that a decimal JSON round-trip would perturb.
    write_affine_graph_model(tmp_path / "g", with_signature=False)
    (tmp_path / "g" / "group1-shard1of1.bin").write_bytes(
        np.eye(3, 2, dtype="<f4").tobytes() + np.zeros(2, "<f4").tobytes()
    )
    x = np.array([[np.float32(1 / 3), np.float32(1e-30), 0.0], [np.pi, -2.5e7, 9.0]], dtype=np.float32)
    (y,) = tfjs.predict(tmp_path / "g", [x], kind="graph")
    np.testing.assert_array_equal(y, x[:, :2])


def test_model_rewritten_in_place_is_reloaded(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    tfjs.predict(model, [X], kind="graph")
    (model / "group1-shard1of1.bin").write_bytes((2 * W).astype("<f4").tobytes() + B.tobytes())
    # Same size: make sure the mtime differs so the cache key changes.
    p = model / "model.json"
    p.write_text(p.read_text() + " ")
    (y,) = tfjs.predict(model, [X], kind="graph")
    np.testing.assert_allclose(y, X @ (2 * W) + B, rtol=0, atol=1e-5)


def test_runtime_errors_are_reported_and_harness_survives(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_dense_layers_model(tmp_path / "l")
    (model / "group1-shard1of1.bin").write_bytes(b"\0" * 8)  # too short for 8 floats
    with pytest.raises(TfjsError):
        tfjs.predict(model, [X], kind="layers")
    with pytest.raises(TfjsError, match="model.json"):
        tfjs.predict(tmp_path / "missing", [X], kind="graph")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "model.json").write_text("{not json")
    with pytest.raises(TfjsError, match=r"cannot read .*corrupt/model.json"):
        tfjs.predict(tmp_path / "corrupt", [X], kind="graph")
    good = write_affine_graph_model(tmp_path / "g", with_signature=False)
    (y,) = tfjs.predict(good, [X], kind="graph")
    np.testing.assert_allclose(y, expected(), rtol=0, atol=1e-6)


def test_weight_paths_cannot_escape_model_dir(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    (tmp_path / "outside.bin").write_bytes((model / "group1-shard1of1.bin").read_bytes())
    doc = json.loads((model / "model.json").read_text())
    doc["weightsManifest"][0]["paths"] = ["../outside.bin"]
    (model / "model.json").write_text(json.dumps(doc))
    with pytest.raises(TfjsError, match="escapes the model directory"):
        tfjs.predict(model, [X], kind="graph")


def test_timeit_reports_median(tfjs: TfjsRuntime, tmp_path: Path) -> None:
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    ms = tfjs.benchmark(model, [X], kind="graph", runs=5)
    assert 0.0 < ms < 5000.0


def _fake_node(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-node"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_dead_harness_is_reported_with_its_stderr(tmp_path: Path) -> None:
    require_js_runtime()
    node = _fake_node(tmp_path, "read line; echo boom-from-fake-node >&2; exit 3")
    with TfjsRuntime(node=node) as rt:
        with pytest.raises(HarnessDied, match=r"(?s)exited with code 3.*boom-from-fake-node"):
            rt.predict(tmp_path, [X], kind="graph")


def test_stuck_harness_times_out(tmp_path: Path) -> None:
    require_js_runtime()
    node = _fake_node(tmp_path, "read line; echo stuck >&2; exec sleep 30")
    with TfjsRuntime(node=node, timeout_s=1) as rt:
        with pytest.raises(HarnessDied, match="no answer within 1 s"):
            rt.predict(tmp_path, [X], kind="graph")


def test_killed_harness_is_restarted(tmp_path: Path) -> None:
    require_js_runtime()
    model = write_affine_graph_model(tmp_path / "g", with_signature=False)
    with TfjsRuntime() as rt:
        rt._proc.kill()
        rt._proc.wait()
        (y,) = rt.predict(model, [X], kind="graph")
        np.testing.assert_allclose(y, expected(), rtol=0, atol=1e-6)


def test_missing_runtime_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tfjs_runtime, "missing_runtime_reason", lambda: "node_modules is missing")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="node_modules is missing"):
        require_js_runtime()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI: node_modules is missing"):
        require_js_runtime()
