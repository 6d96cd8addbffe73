"""Keras 3 inputs (``model.save('x.h5')`` and ``.keras`` zips) -> Keras-2-style layers models."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras_models as km
import numpy as np
import pytest
import tolerances

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.layers import keras3
from tfjsconv.options import ConversionOptions
from tfjsconv.weights import read_weights

K3 = [
    ("k3_cnn_h5", "keras"),
    ("k3_cnn_keras", "keras_keras"),
    ("k3_seq_keras", "keras_keras"),
    ("k3_zoo_keras", "keras_keras"),
    ("k3_nested_keras", "keras_keras"),
    ("k3_multi_keras", "keras_keras"),
]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


def convert(src, out, fmt, **opts) -> dict:
    api.convert(
        str(src), str(out), ConversionOptions(input_format=fmt, output_format="tfjs_layers_model", **opts)
    )
    return json.loads((Path(out) / "model.json").read_text())


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@pytest.mark.parametrize("name,fmt", K3)
def test_config_is_keras2_style(models, tmp_path, name, fmt):
    obj = convert(models[name], tmp_path / "o", fmt)
    assert obj["generatedBy"].startswith("keras v3.")
    config = obj["modelTopology"]["model_config"]
    text = json.dumps(config)
    for banned in (
        '"batch_shape"',
        "DTypePolicy",
        '"module"',
        '"registered_name"',
        '"build_config"',
        '"shared_object_id"',
        "__keras_tensor__",
        '"optional"',
    ):
        assert banned not in text, banned
    first = config["config"]["layers"][0]
    assert first["class_name"] == "InputLayer" and "batch_input_shape" in first["config"]
    for value in _walk(config):
        if isinstance(value, dict) and "dtype" in value and "class_name" not in value:
            assert isinstance(value["dtype"], str)
    if "cnn" in name:
        assert config["config"]["input_layers"] == [["pixels", 0, 0]]
        assert config["config"]["output_layers"] == [["d1", 0, 0]]
        cat = [layer for layer in config["config"]["layers"] if layer["name"] == "cat"][0]
        assert cat["inbound_nodes"] == [[["act", 0, 0, {}], ["dw1", 0, 0, {}]]]


@pytest.mark.parametrize("name,fmt", K3)
def test_weights_match_keras3_model_and_names_are_keras2(models, tmp_path, name, fmt):
    obj = convert(models[name], tmp_path / "o", fmt)
    got = read_weights(obj["weightsManifest"], str(tmp_path / "o"))
    original = km.load_original(models[name])
    expected = [np.asarray(w) for w in original.get_weights()]
    assert len(got) == len(expected)
    for (_, a), b in zip(got, expected, strict=False):
        np.testing.assert_array_equal(a, b)
    names = [n for n, _ in got]
    assert not any("vars" in n for n in names)
    if "cnn" in name:
        assert names[:2] == ["c1/kernel", "c1/bias"]
        assert "dw1/depthwise_kernel" in names
    elif "nested" in name:
        assert names == [
            "s1/kernel",
            "s1/bias",
            "s2/kernel",
            "s2/bias",
            "f1/kernel",
            "f1/bias",
            "head/kernel",
            "head/bias",
        ]
    elif "multi" in name:
        assert names == ["shared/kernel", "shared/bias", "o1/kernel", "o1/bias"]
    elif "zoo" in name:
        assert "bidi/forward_bl/lstm_cell/kernel" in names
        assert "bidi/backward_bl/lstm_cell/bias" in names
        assert "td/kernel" in names and "sep/pointwise_kernel" in names
    else:
        assert names[:4] == [
            "emb/embeddings",
            "rnn/lstm_cell/kernel",
            "rnn/lstm_cell/recurrent_kernel",
            "rnn/lstm_cell/bias",
        ]


@pytest.mark.parametrize("name,fmt", K3)
def test_loads_in_tf_keras_and_predicts_like_keras3(models, tmp_path, name, fmt):
    import tf_keras

    obj = convert(models[name], tmp_path / "o", fmt)
    rebuilt = tf_keras.models.model_from_json(json.dumps(obj["modelTopology"]["model_config"]))
    table = dict(read_weights(obj["weightsManifest"], str(tmp_path / "o")))
    rebuilt.set_weights([table[w.name[:-2]] for w in rebuilt.weights])
    x = km.INPUTS[name]()
    original = km.load_original(models[name])
    expected = km.as_list(original.predict(x, verbose=0))
    got = km.as_list(rebuilt.predict(x, verbose=0))
    # Both are TF float32 kernels, through Keras 3 and tf_keras layer code: bounded by the
    # model's parity bound (its own float32-vs-float64 gap), like tfjs.
    tol = tolerances.keras_bound(original, km.as_list(x))
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=False):
        np.testing.assert_allclose(a, b, atol=tol, rtol=0)


def test_h5_and_keras_zip_give_the_same_model(models, tmp_path):
    a = convert(models["k3_cnn_h5"], tmp_path / "a", "keras")
    b = convert(models["k3_cnn_keras"], tmp_path / "b", "keras_keras")
    assert a["weightsManifest"] == b["weightsManifest"]
    assert a["modelTopology"]["model_config"] == b["modelTopology"]["model_config"]
    assert (tmp_path / "a" / "group1-shard1of1.bin").read_bytes() == (
        tmp_path / "b" / "group1-shard1of1.bin"
    ).read_bytes()


def test_keras_zip_not_extracted_next_to_input(models, tmp_path):
    import shutil

    src = tmp_path / "in" / "m.keras"
    src.parent.mkdir()
    shutil.copy(models["k3_cnn_keras"], src)
    convert(src, tmp_path / "o", "keras_keras")
    assert sorted(p.name for p in src.parent.iterdir()) == ["m.keras"]


def _rezip(src: str, dst: Path, extra=(), edit_config=None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and edit_config is not None:
                cfg = json.loads(data)
                edit_config(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(info.filename, data)
        for name, data in extra:
            zout.writestr(name, data)
    return dst


@pytest.mark.parametrize("entry", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_zip_with_unsafe_entry_refused(models, tmp_path, entry):
    bad = _rezip(models["k3_cnn_keras"], tmp_path / "bad.keras", extra=[(entry, b"x")])
    with pytest.raises(ConversionError, match="unsafe zip entry") as info:
        convert(bad, tmp_path / "o", "keras_keras")
    assert "\n" not in str(info.value)


def test_unknown_layer_with_weights_is_named(models, tmp_path):
    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["config"]["name"] == "c1":
                layer["class_name"] = "FancyConv"

    bad = _rezip(models["k3_cnn_keras"], tmp_path / "bad.keras", edit_config=edit)
    with pytest.raises(
        ConversionError,
        match="layer 'c1' \\(FancyConv\\): class is not registered.*--output_format=tfjs_graph_model",
    ) as info:
        convert(bad, tmp_path / "o", "keras_keras", allow_unsafe_deserialization=True)
    assert "\n" not in str(info.value)


def test_custom_object_refused_unless_allowed(models, tmp_path):
    def edit(cfg):
        for layer in cfg["config"]["layers"]:
            if layer["config"]["name"] == "act":
                layer["module"] = "my_project.layers"
                layer["registered_name"] = "MyProject>Act"

    bad = _rezip(models["k3_cnn_keras"], tmp_path / "bad.keras", edit_config=edit)
    with pytest.raises(ConversionError, match="custom.*'Activation'.*allow_unsafe"):
        convert(bad, tmp_path / "o", "keras_keras")
    convert(bad, tmp_path / "o2", "keras_keras", allow_unsafe_deserialization=True)


def test_not_a_zip_or_h5(tmp_path):
    bad = tmp_path / "x.keras"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ConversionError):
        convert(bad, tmp_path / "o", "keras_keras")


def test_keras3_only_option_refused():
    layer = {
        "class_name": "Dense",
        "name": "d",
        "inbound_nodes": [],
        "config": {"name": "d", "units": 2, "lora_rank": 4},
    }
    with pytest.raises(ConversionError, match="lora_rank=4"):
        keras3.translate_layer(layer, allow_unsafe=False, functional=True)


def test_weight_layouts_honour_center_scale_and_use_bias():
    bn = {"center": False, "scale": True}
    assert keras3.keras2_weight_names("bn", "BatchNormalization", bn, 3) == [
        "bn/gamma",
        "bn/moving_mean",
        "bn/moving_variance",
    ]
    assert keras3.keras2_weight_names("d", "Dense", {"use_bias": False}, 1) == ["d/kernel"]
    with pytest.raises(ConversionError, match="has 2 weights in the file but its config implies 1"):
        keras3.keras2_weight_names("d", "Dense", {"use_bias": False}, 2)


def test_keras3_inbound_node_kwargs_and_nested_args():
    def t(n):
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": [None, 2], "dtype": "float32", "keras_history": [n, 1, 0]},
        }

    nodes = [{"args": [[t("a"), t("b")]], "kwargs": {"mask": None, "training": False}}]
    assert keras3.translate_inbound_nodes(nodes, "x", False) == [
        [["a", 1, 0, {"training": False}], ["b", 1, 0, {"training": False}]]
    ]
