"""Round trips: Keras -> layers -> Keras, SavedModel -> layers, layers -> layers."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import h5py
import keras_models as km
import numpy as np
import pytest
import tolerances

from tfjsconv import api, model_json, weights
from tfjsconv.errors import ConversionError
from tfjsconv.options import ConversionOptions

IN_FORMAT = {
    "mlp": "keras",
    "cnn": "keras",
    "lstm": "keras",
    "k3_cnn_h5": "keras",
    "k3_cnn_keras": "keras_keras",
    "k3_seq_keras": "keras_keras",
    "k3_zoo_keras": "keras_keras",
    "nested": "keras",
    "k3_nested_keras": "keras_keras",
    "k3_multi_keras": "keras_keras",
}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


def conv(src, out, input_format, output_format, **opts) -> Path:
    api.convert(
        str(src), str(out), ConversionOptions(input_format=input_format, output_format=output_format, **opts)
    )
    return Path(out)


def bound(model, x) -> float:
    """The same weights through other Keras layer code (Keras 3 -> tf_keras), TF float32
    kernels on both sides: within the model's parity bound (``tolerances``)."""
    return tolerances.keras_bound(model, km.as_list(x))


def predict(model, x):
    out = km.as_list(model.predict(x, verbose=0))
    return np.concatenate([o.reshape(len(o), -1) for o in out], axis=1)


@pytest.mark.parametrize("name", sorted(IN_FORMAT))
def test_keras_layers_keras_h5_predicts_identically(models, tmp_path, name):
    import tf_keras

    layers_dir = conv(models[name], tmp_path / "l", IN_FORMAT[name], "tfjs_layers_model")
    h5 = conv(layers_dir, tmp_path / "back.h5", "tfjs_layers_model", "keras")
    x = km.INPUTS[name]()
    back = tf_keras.models.load_model(h5, compile=False)
    original = km.load_original(models[name])
    np.testing.assert_allclose(predict(back, x), predict(original, x), atol=bound(original, x), rtol=0)


def test_layers_to_keras_without_h5_suffix_is_still_h5(models, tmp_path):
    layers_dir = conv(models["mlp"], tmp_path / "l", "keras", "tfjs_layers_model")
    out = conv(layers_dir, tmp_path / "model_no_suffix", "tfjs_layers_model", "keras")
    assert out.is_file() and h5py.is_hdf5(out)


def test_layers_to_keras_keras_is_deterministic_and_loads(models, tmp_path):
    import tf_keras

    layers_dir = conv(models["cnn"], tmp_path / "l", "keras", "tfjs_layers_model")
    a = conv(layers_dir, tmp_path / "a.keras", "tfjs_layers_model", "keras_keras")
    b = conv(layers_dir, tmp_path / "b.keras", "tfjs_layers_model", "keras_keras")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert "date_saved" not in json.loads(z.read("metadata.json"))
    x = km.INPUTS["cnn"]()
    back = tf_keras.models.load_model(str(a), compile=False)
    original = km.load_original(models["cnn"])
    np.testing.assert_allclose(predict(back, x), predict(original, x), atol=bound(original, x), rtol=0)


def test_saved_model_round_trip(models, tmp_path):
    layers_dir = conv(models["lstm"], tmp_path / "l", "keras", "tfjs_layers_model")
    sm = conv(layers_dir, tmp_path / "sm", "tfjs_layers_model", "keras_saved_model")
    assert {"saved_model.pb", "variables"} <= set(os.listdir(sm))
    again = conv(sm, tmp_path / "l2", "keras_saved_model", "tfjs_layers_model")
    _, w1 = model_json.load_tfjs_model(str(layers_dir))
    _, w2 = model_json.load_tfjs_model(str(again))
    assert [n for n, _ in w1] == [n for n, _ in w2]
    for (_, a), (_, b) in zip(w1, w2, strict=False):
        np.testing.assert_array_equal(a, b)


def test_layers_to_layers_reshards_and_requantizes(models, tmp_path):
    src = conv(models["cnn"], tmp_path / "l", "keras", "tfjs_layers_model")
    q = conv(
        src,
        tmp_path / "q",
        "tfjs_layers_model",
        "tfjs_layers_model",
        quantize_uint16=True,
        weight_shard_size_bytes=2048,
    )
    obj = json.loads((q / "model.json").read_text())
    orig = json.loads((src / "model.json").read_text())
    assert obj["modelTopology"] == orig["modelTopology"]
    assert obj["generatedBy"] == orig["generatedBy"]
    total = sum(os.path.getsize(src / p) for p in orig["weightsManifest"][0]["paths"])
    assert len(obj["weightsManifest"][0]["paths"]) == -(-(total // 2) // 2048)
    # Quantized -> plain layers: values are the dequantized ones, stored as float32.
    plain = conv(q, tmp_path / "p", "tfjs_layers_model", "tfjs_layers_model")
    _, deq = model_json.load_tfjs_model(str(q))
    _, got = model_json.load_tfjs_model(str(plain))
    for (n1, a), (n2, b) in zip(deq, got, strict=False):
        assert n1 == n2
        np.testing.assert_array_equal(a, b)
    assert "quantization" not in json.dumps(json.loads((plain / "model.json").read_text()))


def test_layers_to_layers_split_by_layer(models, tmp_path):
    src = conv(models["mlp"], tmp_path / "l", "keras", "tfjs_layers_model")
    out = conv(
        src,
        tmp_path / "s",
        "tfjs_layers_model",
        "tfjs_layers_model",
        split_weights_by_layer=True,
        metadata=(("k", 1),),
    )
    obj = json.loads((out / "model.json").read_text())
    assert [[w["name"] for w in g["weights"]] for g in obj["weightsManifest"]] == [
        ["zeta/kernel", "zeta/bias"],
        ["alpha/kernel", "alpha/bias"],
        ["mid/kernel", "mid/bias"],
    ]
    assert obj["userDefinedMetadata"] == {"k": 1}


def test_quantized_layers_to_keras_gets_dequantized_weights(models, tmp_path):
    import tf_keras

    q = conv(models["mlp"], tmp_path / "q", "keras", "tfjs_layers_model", quantize_uint8=True)
    h5 = conv(q, tmp_path / "m.h5", "tfjs_layers_model", "keras")
    _, deq = model_json.load_tfjs_model(str(q))
    back = tf_keras.models.load_model(h5, compile=False)
    for (_, a), b in zip(deq, back.get_weights(), strict=False):
        np.testing.assert_array_equal(a, b)


def test_reference_style_keras3_layers_model_is_translated(models, tmp_path):
    """What the reference writes for a Keras 3 h5: raw Keras 3 config, h5 weight names."""
    with h5py.File(models["k3_cnn_h5"], "r") as f:
        config = json.loads(f.attrs["model_config"])
        named = []
        group = f["model_weights"]
        for layer in sorted(group):  # the reference's alphabetical order
            for wname in group[layer].attrs.get("weight_names", []):
                wname = wname.decode() if isinstance(wname, bytes) else wname
                named.append((wname, np.asarray(group[layer][wname])))
    ref = tmp_path / "ref"
    ref.mkdir()
    manifest = weights.write_weights([named], str(ref))
    model_json.write_model_json(
        str(ref),
        {
            "format": "layers-model",
            "generatedBy": "keras v3.15.1",
            "convertedBy": "x",
            "modelTopology": {"keras_version": "3.15.1", "backend": "tensorflow", "model_config": config},
            "weightsManifest": manifest,
        },
    )
    out = conv(ref, tmp_path / "o", "tfjs_layers_model", "tfjs_layers_model")
    obj = json.loads((out / "model.json").read_text())
    assert '"batch_shape"' not in json.dumps(obj)
    names = [w["name"] for w in obj["weightsManifest"][0]["weights"]]
    assert names[:2] == ["c1/kernel", "c1/bias"] and "dw1/depthwise_kernel" in names


def test_weights_only_layers_model_to_keras_refused(models, tmp_path):
    src = conv(models["weights_only"], tmp_path / "l", "keras", "tfjs_layers_model")
    with pytest.raises(ConversionError, match="no model topology"):
        conv(src, tmp_path / "m.h5", "tfjs_layers_model", "keras")


def test_missing_weight_is_reported(models, tmp_path):
    src = conv(models["mlp"], tmp_path / "l", "keras", "tfjs_layers_model")
    obj = json.loads((src / "model.json").read_text())
    named = [(n, a) for n, a in model_json.load_tfjs_model(str(src))[1] if n != "mid/bias"]
    bad = tmp_path / "bad"
    bad.mkdir()
    obj["weightsManifest"] = weights.write_weights([named], str(bad))
    model_json.write_model_json(str(bad), obj)
    with pytest.raises(ConversionError, match="weights missing from the layers model: mid/bias"):
        conv(bad, tmp_path / "m.h5", "tfjs_layers_model", "keras")
