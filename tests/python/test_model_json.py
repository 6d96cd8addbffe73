"""model.json serialization and loading."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from tfjsconv.errors import ConversionError
from tfjsconv.model_json import dumps, load_model_json, load_tfjs_model, write_model_json
from tfjsconv.weights import write_weights


def test_dumps_exact_bytes():
    obj = {"format": "graph-model", "b": [1, 2.5, None, True], "a": {"é": "ü"}}
    assert dumps(obj) == b'{"format":"graph-model","b":[1,2.5,null,true],"a":{"\\u00e9":"\\u00fc"}}'


def test_dumps_keeps_given_key_order():
    assert dumps({"z": 1, "a": 2}) == b'{"z":1,"a":2}'


def test_dumps_float_repr():
    assert dumps([0.1, -2.5098039215686274, 1e-300, 1.0]) == b"[0.1,-2.5098039215686274,1e-300,1.0]"


def test_dumps_numpy_values():
    assert (
        dumps({"s": (np.int64(3), np.float32(0.5), np.bool_(True)), "a": np.arange(2)})
        == b'{"s":[3,0.5,true],"a":[0,1]}'
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_dumps_rejects_nan(bad):
    with pytest.raises(ConversionError, match="NaN or Infinity"):
        dumps({"userDefinedMetadata": {"x": [bad]}})


def test_write_and_load(tmp_path):
    path = write_model_json(str(tmp_path), {"format": "layers-model", "weightsManifest": []})
    assert path == os.path.join(str(tmp_path), "model.json")
    assert open(path, "rb").read() == b'{"format":"layers-model","weightsManifest":[]}'
    assert load_model_json(path) == {"format": "layers-model", "weightsManifest": []}
    assert load_model_json(str(tmp_path), require_weights_manifest=True)["format"] == "layers-model"


def test_load_missing_file(tmp_path):
    with pytest.raises(ConversionError, match="model.json not found"):
        load_model_json(str(tmp_path / "nope.json"))


def test_load_dir_without_model_json(tmp_path):
    with pytest.raises(ConversionError, match="has no model.json"):
        load_model_json(str(tmp_path))


@pytest.mark.parametrize("content", [b"", b"{", b'{"a": NaN}', b"\xff\xfe{}", b"[1,", b"{} x"])
def test_load_invalid_json(tmp_path, content):
    (tmp_path / "model.json").write_bytes(content)
    with pytest.raises(ConversionError, match="is not valid JSON"):
        load_model_json(str(tmp_path / "model.json"))


@pytest.mark.parametrize("content, kind", [(b"[]", "list"), (b"3", "int"), (b"null", "NoneType")])
def test_load_not_an_object(tmp_path, content, kind):
    (tmp_path / "model.json").write_bytes(content)
    with pytest.raises(ConversionError, match=f"is not a JSON object \\(got {kind}\\)"):
        load_model_json(str(tmp_path / "model.json"))


def test_load_missing_or_bad_manifest(tmp_path):
    (tmp_path / "model.json").write_bytes(b'{"format":"layers-model"}')
    assert load_model_json(str(tmp_path)) == {"format": "layers-model"}
    with pytest.raises(ConversionError, match="has no weightsManifest"):
        load_model_json(str(tmp_path), require_weights_manifest=True)
    (tmp_path / "model.json").write_bytes(b'{"weightsManifest":{}}')
    with pytest.raises(ConversionError, match="weightsManifest is not a list"):
        load_model_json(str(tmp_path), require_weights_manifest=True)


def test_load_deeply_nested(tmp_path):
    (tmp_path / "model.json").write_bytes(b"[" * 100000 + b"]" * 100000)
    with pytest.raises(ConversionError):
        load_model_json(str(tmp_path / "model.json"))


def test_load_bom_accepted(tmp_path):
    (tmp_path / "model.json").write_bytes(b'\xef\xbb\xbf{"a":1}')
    assert load_model_json(str(tmp_path)) == {"a": 1}


def test_load_tfjs_model(tmp_path):
    w = np.array([[1.0, 2.0]], np.float32)
    manifest = write_weights([[("w", w)]], str(tmp_path))
    write_model_json(str(tmp_path), {"format": "layers-model", "weightsManifest": manifest})
    for where in (str(tmp_path), str(tmp_path / "model.json")):
        model, weights = load_tfjs_model(where)
        assert model["format"] == "layers-model"
        assert [n for n, _ in weights] == ["w"]
        np.testing.assert_array_equal(weights[0][1], w)
    # relative path: shards resolve relative to model.json, not the cwd
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path.parent)
        assert load_tfjs_model(os.path.join(tmp_path.name, "model.json"))[1][0][0] == "w"
    finally:
        os.chdir(cwd)


def test_dumps_is_valid_json_round_trip():
    obj = {"k": ["\u2028", "\x00", "😀", -0.0, 10**20]}
    assert json.loads(dumps(obj)) == obj


def test_weight_modules_do_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tfjsconv.weights, tfjsconv.model_json, tfjsconv.quantization; "
        "bad = [m for m in ('tensorflow', 'tf_keras', 'keras', 'h5py') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "..", "..", "converter"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
