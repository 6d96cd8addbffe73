"""Keras 2 HDF5 -> tfjs layers model (the TensorFlow-free path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras_models as km
import numpy as np
import pytest

from tfjsconv import api, model_json
from tfjsconv.errors import ConversionError
from tfjsconv.options import ConversionOptions
from tfjsconv.weights import read_weights

REPO = Path(__file__).resolve().parents[2]
CONVERTED_BY = "TensorFlow.js Converter v4.22.0 (tfjsconv 0.1.0)"


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


def convert(src, out, **opts) -> dict:
    opts.setdefault("input_format", "keras")
    opts.setdefault("output_format", "tfjs_layers_model")
    api.convert(str(src), str(out), ConversionOptions(**opts))
    return json.loads((Path(out) / "model.json").read_text())


def manifest_weights(out: Path, obj: dict):
    return read_weights(obj["weightsManifest"], str(out))


def test_mlp_model_json_layout_and_weights_in_model_order(models, tmp_path):
    obj = convert(models["mlp"], tmp_path / "o")
    assert list(obj) == ["format", "generatedBy", "convertedBy", "modelTopology", "weightsManifest"]
    assert obj["format"] == "layers-model"
    assert obj["generatedBy"] == "keras v2.21.0"
    assert obj["convertedBy"] == CONVERTED_BY
    topo = obj["modelTopology"]
    assert list(topo) == ["keras_version", "backend", "model_config", "training_config"]
    assert topo["model_config"]["class_name"] == "Sequential"
    assert topo["training_config"]["loss"] == "categorical_crossentropy"
    # Model order (zeta, alpha, mid), not h5's alphabetical order (alpha, mid, zeta).
    names = [w["name"] for w in obj["weightsManifest"][0]["weights"]]
    assert names == ["zeta/kernel", "zeta/bias", "alpha/kernel", "alpha/bias", "mid/kernel", "mid/bias"]
    import tf_keras

    expected = tf_keras.models.load_model(models["mlp"], compile=False).get_weights()
    got = manifest_weights(tmp_path / "o", obj)
    assert len(got) == len(expected)
    for (_, a), b in zip(got, expected, strict=False):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["cnn", "lstm"])
def test_weights_equal_get_weights(models, tmp_path, name):
    import tf_keras

    obj = convert(models[name], tmp_path / "o")
    model = tf_keras.models.load_model(models[name], compile=False)
    expected_names = [w.name[:-2] if w.name.endswith(":0") else w.name for w in model.weights]
    got = manifest_weights(tmp_path / "o", obj)
    assert [n for n, _ in got] == expected_names
    for (_, a), b in zip(got, model.get_weights(), strict=False):
        np.testing.assert_array_equal(a, b)


def test_one_file_per_shard_size_and_deterministic_bytes(models, tmp_path):
    obj = convert(models["cnn"], tmp_path / "a", weight_shard_size_bytes=4096)
    convert(models["cnn"], tmp_path / "b", weight_shard_size_bytes=4096)
    paths = obj["weightsManifest"][0]["paths"]
    total = sum(int(np.prod(w["shape"])) * 4 for w in obj["weightsManifest"][0]["weights"])
    assert len(paths) == -(-total // 4096) and len(paths) > 1
    sizes = [os.path.getsize(tmp_path / "a" / p) for p in paths]
    assert sizes[:-1] == [4096] * (len(paths) - 1) and sum(sizes) == total
    for f in sorted(os.listdir(tmp_path / "a")):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_split_weights_by_layer(models, tmp_path):
    obj = convert(models["cnn"], tmp_path / "o", split_weights_by_layer=True)
    groups = [[w["name"] for w in g["weights"]] for g in obj["weightsManifest"]]
    assert groups == [
        ["conv/kernel", "conv/bias"],
        ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"],
        ["dw/depthwise_kernel", "dw/bias"],
        ["head/kernel", "head/bias"],
    ]
    assert [g["paths"] for g in obj["weightsManifest"]] == [[f"group{i}-shard1of1.bin"] for i in range(1, 5)]


def test_metadata(models, tmp_path):
    meta = (("author", {"name": "x", "n": [1, 2]}), ("notes", "hi"))
    obj = convert(models["mlp"], tmp_path / "o", metadata=meta)
    assert list(obj) == [
        "format",
        "generatedBy",
        "convertedBy",
        "userDefinedMetadata",
        "modelTopology",
        "weightsManifest",
    ]
    assert obj["userDefinedMetadata"] == {"author": {"name": "x", "n": [1, 2]}, "notes": "hi"}


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16"])
def test_quantized_weights_within_bound(models, tmp_path, dtype):
    obj = convert(models["cnn"], tmp_path / "o", **{f"quantize_{dtype}": True})
    plain = convert(models["cnn"], tmp_path / "p")
    original = dict(manifest_weights(tmp_path / "p", plain))
    for g in obj["weightsManifest"]:
        for w in g["weights"]:
            assert w["dtype"] == "float32" and w["quantization"]["dtype"] == dtype
    for (name, deq), entry in zip(
        manifest_weights(tmp_path / "o", obj), obj["weightsManifest"][0]["weights"], strict=False
    ):
        ref = original[name]
        if dtype == "float16":
            bound = np.abs(ref) * 2.0**-11 + 6e-8
        else:
            bound = entry["quantization"]["scale"] / 2 + 1e-6 * np.abs(ref).max()
        assert np.all(np.abs(deq - ref) <= bound), name
    size = sum(os.path.getsize(tmp_path / "o" / p) for p in obj["weightsManifest"][0]["paths"])
    full = sum(os.path.getsize(tmp_path / "p" / p) for p in plain["weightsManifest"][0]["paths"])
    assert size == full // {"uint8": 4, "uint16": 2, "float16": 2}[dtype]


def test_quantize_by_pattern(models, tmp_path):
    obj = convert(models["cnn"], tmp_path / "o", quantize_uint8=("conv/*",), quantize_float16=True)
    q = {w["name"]: w.get("quantization", {}).get("dtype") for w in obj["weightsManifest"][0]["weights"]}
    assert q["conv/kernel"] == q["conv/bias"] == "uint8"
    assert q["head/kernel"] == "float16"


def test_weights_only_h5(models, tmp_path):
    obj = convert(models["weights_only"], tmp_path / "o")
    assert obj["generatedBy"] is None and obj["modelTopology"] is None
    # Weights-only files keep their ``layer_names`` order.
    assert [w["name"] for w in obj["weightsManifest"][0]["weights"]] == [
        "b_layer/kernel",
        "b_layer/bias",
        "a_layer/kernel",
        "a_layer/bias",
    ]


def _rewrite_config(src: str, dst: Path, edit) -> Path:
    import shutil

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        edit(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
    return dst


def test_translate_class_names(models, tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][2]["class_name"] = "BatchNormalizationV1"

    src = _rewrite_config(models["cnn"], tmp_path / "v1.h5", edit)
    obj = convert(src, tmp_path / "o")
    assert obj["modelTopology"]["model_config"]["config"]["layers"][2]["class_name"] == "BatchNormalization"


def test_lambda_layer_refused_unless_allowed(models, tmp_path):
    def edit(cfg):
        cfg["config"]["layers"][3] = {
            "class_name": "Lambda",
            "name": "relu",
            "inbound_nodes": [[["bn", 0, 0, {}]]],
            "config": {"name": "relu", "function": ["4wAAAAAAAAAA", None, None], "function_type": "lambda"},
        }

    src = _rewrite_config(models["cnn"], tmp_path / "lam.h5", edit)
    with pytest.raises(ConversionError, match="Lambda") as info:
        convert(src, tmp_path / "o")
    assert "\n" not in str(info.value)
    # Allowed, it is still refused: tfjs 4.22 registers no Lambda class (unless the user
    # registers one in JavaScript and passes --skip_op_check).
    with pytest.raises(ConversionError, match="'relu' \\(Lambda\\): class is not registered"):
        convert(src, tmp_path / "o2", allow_unsafe_deserialization=True)
    obj = convert(src, tmp_path / "o2", allow_unsafe_deserialization=True, skip_op_check=True)
    assert obj["modelTopology"]["model_config"]["config"]["layers"][3]["class_name"] == "Lambda"


def test_not_an_h5_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ConversionError, match="not a readable HDF5 file") as info:
        convert(bad, tmp_path / "o")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "o").exists()


def test_h5_without_model(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ConversionError, match="not a Keras model file"):
        convert(path, tmp_path / "o")


def test_missing_weight_dataset(models, tmp_path):
    import shutil

    src = tmp_path / "broken.h5"
    shutil.copy(models["mlp"], src)
    with h5py.File(src, "r+") as f:
        del f["model_weights/alpha/alpha/bias:0"]
    with pytest.raises(ConversionError, match="alpha/bias:0"):
        convert(src, tmp_path / "o")


NO_TF_SCRIPT = """
import sys
from tfjsconv import api
from tfjsconv.options import ConversionOptions
api.convert(sys.argv[1], sys.argv[2], ConversionOptions(input_format=sys.argv[3],
            output_format="tfjs_layers_model", quantize_uint8=True))
heavy = sorted(m for m in ("tensorflow", "tf_keras", "keras", "jax") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "name,fmt", [("cnn", "keras"), ("k3_cnn_h5", "keras"), ("k3_cnn_keras", "keras_keras")]
)
def test_no_tensorflow_import(models, tmp_path, name, fmt):
    env = dict(os.environ, PYTHONPATH=str(REPO / "converter"))
    out = subprocess.run(
        [sys.executable, "-c", NO_TF_SCRIPT, models[name], str(tmp_path / "o"), fmt],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY=\n" in out
    out = subprocess.run(
        [sys.executable, "-c", NO_TF_SCRIPT, str(tmp_path / "o"), str(tmp_path / "o2"), "tfjs_layers_model"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY=\n" in out


def test_model_json_is_canonical(models, tmp_path):
    convert(models["lstm"], tmp_path / "o")
    raw = (tmp_path / "o" / "model.json").read_bytes()
    assert raw == model_json.dumps(json.loads(raw))
    assert b"/tmp" not in raw and str(tmp_path).encode() not in raw


@pytest.mark.parametrize("config", [[1, 2], {"class_name": "Sequential"}, {"config": {"layers": [{}]}}])
def test_malformed_model_config(models, tmp_path, config):
    src = _rewrite_config(models["mlp"], tmp_path / "bad.h5", lambda cfg: (cfg.clear(), cfg.update({"x": 1})))
    with h5py.File(src, "r+") as f:
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ConversionError, match="malformed Keras model config") as info:
        convert(src, tmp_path / "o")
    assert "\n" not in str(info.value)
