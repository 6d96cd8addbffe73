"""Layers models as tfjs-layers itself saves them and as old converters wrote them
convert to every output format, and what they convert to computes what they compute.

The files come from the real TensorFlow.js 4.22 (``tests/js/save_layers_model.js``
calls ``model.save()``: bare model config as ``modelTopology``, ``./model.weights.bin``,
an empty weights file for a model without weights). The old-converter spellings are
derived from them the way those converters wrote files: no ``format`` key, uint8
weights without ``original_dtype``, per-layer groups listed against the topological
order, shards named without ``.bin``.

The truth is the input file itself run in tfjs (``tf.loadLayersModel`` reads every one
of these spellings). A converted layers model must give the same bits (same weights,
same runtime, same kernels); a graph model or a Keras model runs other kernels, so it
must agree within the Keras output model's parity bound (``tolerances.keras_bound``: 4x
its own float32-vs-float64 gap, at least 8 float32 ulps of the output scale).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tolerances
from tfjs_runtime import JS_DIR

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.options import ConversionOptions

pytestmark = pytest.mark.tfjs

SAVER = JS_DIR / "save_layers_model.js"
# model name -> its inputs (shapes from save_layers_model.js).
INPUTS = {
    "sequential": lambda: [np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)],
    "functional": lambda: [np.random.default_rng(2).standard_normal((2, 5, 5, 2)).astype(np.float32)],
    "no_weights": lambda: [np.random.default_rng(3).standard_normal((2, 2, 3)).astype(np.float32)],
    # tfjs's Embedding takes a float32 input (its InputLayer's dtype) and casts it.
    "recurrent": lambda: [np.array([[1, 2, 3, 4, 0], [5, 6, 7, 8, 9]], np.float32)],
    "conv_zoo": lambda: [np.random.default_rng(4).standard_normal((2, 6, 6, 2)).astype(np.float32)],
}
# Models whose reading is the same as another's: no SavedModel output (the slow one).
_NO_SAVED_MODEL = ("recurrent", "conv_zoo")
OUTPUTS = {"tfjs_layers_model": "", "tfjs_graph_model": "", "keras": ".h5", "keras_saved_model": ""}


def _load(path: Path) -> dict:
    return json.loads((path / "model.json").read_text())


def _dump(path: Path, obj: dict) -> None:
    (path / "model.json").write_text(json.dumps(obj))


def _convert(src: Path, out: Path, output_format: str, **kw) -> None:
    api.convert(
        str(src / "model.json"),
        str(out),
        ConversionOptions(input_format="tfjs_layers_model", output_format=output_format, **kw),
    )


def _old_spellings(saved: Path, root: Path) -> dict[str, Path]:
    """The functional model in the spellings old converters wrote (see the module doc)."""
    out: dict[str, Path] = {}
    no_format = root / "no_format"
    shutil.copytree(saved / "functional", no_format)
    obj = _load(no_format)
    for key in ("format", "generatedBy", "convertedBy"):
        obj.pop(key)
    _dump(no_format, obj)
    out["no_format"] = no_format

    legacy_uint8 = root / "legacy_uint8"
    _convert(saved / "functional", legacy_uint8, "tfjs_layers_model", quantize_uint8=True)
    obj = _load(legacy_uint8)
    for group in obj["weightsManifest"]:
        for w in group["weights"]:
            w["quantization"].pop("original_dtype")
    _dump(legacy_uint8, obj)
    out["legacy_uint8"] = legacy_uint8

    # One group per layer, listed last layer first, shards without an extension.
    unordered = root / "unordered_no_ext"
    _convert(saved / "functional", unordered, "tfjs_layers_model", split_weights_by_layer=True)
    obj = _load(unordered)
    assert len(obj["weightsManifest"]) == 3
    for group in obj["weightsManifest"]:
        renamed = []
        for p in group["paths"]:
            (unordered / p).rename(unordered / p.removesuffix(".bin"))
            renamed.append(p.removesuffix(".bin"))
        group["paths"] = renamed
    obj["weightsManifest"].reverse()
    obj["modelTopology"] = _load(saved / "functional")["modelTopology"]  # the bare tfjs form too
    _dump(unordered, obj)
    out["unordered_no_ext"] = unordered
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """name -> a directory holding a real tfjs-saved (or old-spelling) model.json."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    root = tmp_path_factory.mktemp("tfjs_saved")
    subprocess.run(["node", str(SAVER), str(root)], cwd=JS_DIR, check=True, capture_output=True)
    found = {name: root / name for name in (*INPUTS, "custom_class")}
    found.update(_old_spellings(root, tmp_path_factory.mktemp("old_spellings")))
    return found


def _base(name: str) -> str:
    return name if name in INPUTS else "functional"


def _keras_predict(path: Path, inputs: list[np.ndarray]):
    import tf_keras

    model = tf_keras.models.load_model(str(path), compile=False)
    outs = model.predict(inputs, verbose=0)
    return model, [np.asarray(o) for o in (outs if isinstance(outs, list) else [outs])]


def test_saved_by_tfjs_has_the_bare_topology(files):
    """The input really is what tfjs-layers writes (else the test proves nothing)."""
    obj = _load(files["sequential"])
    assert "model_config" not in obj["modelTopology"]
    assert obj["modelTopology"]["class_name"] == "Sequential"
    assert obj["weightsManifest"][0]["paths"] == ["./model.weights.bin"]
    assert (files["no_weights"] / "model.weights.bin").stat().st_size == 0
    assert "format" not in _load(files["no_format"])


# Every tfjs-saved model to every format; the old spellings differ from those only in how
# the weights are read, which the layers and Keras outputs both exercise.
CASES = [
    (name, fmt)
    for name in INPUTS
    for fmt in OUTPUTS
    if not (name in _NO_SAVED_MODEL and fmt == "keras_saved_model")
] + [
    (name, fmt)
    for name in ("no_format", "legacy_uint8", "unordered_no_ext")
    for fmt in ("tfjs_layers_model", "keras")
]


@pytest.mark.parametrize(("name", "output_format"), CASES)
def test_converts_to_every_format_and_computes_the_same(files, tfjs, tmp_path, name, output_format):
    src = files[name]
    inputs = INPUTS[_base(name)]()
    truth = tfjs.predict(src, inputs, kind="layers")
    out = tmp_path / f"out{OUTPUTS[output_format]}"
    _convert(src, out, output_format)
    if output_format == "tfjs_layers_model":
        got = tfjs.predict(out, inputs, kind="layers")
        for g, t in zip(got, truth, strict=True):
            np.testing.assert_array_equal(g, t)  # same weights, runtime and kernels
        return
    keras_file = out if output_format != "tfjs_graph_model" else tmp_path / "twin.h5"
    if output_format == "tfjs_graph_model":
        got = tfjs.predict(out, inputs, kind="graph")
        _convert(src, keras_file, "keras")
        model, _ = _keras_predict(keras_file, inputs)
    else:
        model, got = _keras_predict(out, inputs)
    bound = tolerances.keras_bound(model, inputs)
    assert len(got) == len(truth)
    for g, t in zip(got, truth, strict=True):
        assert tolerances.max_diff(g, t) <= bound, (name, output_format, tolerances.max_diff(g, t), bound)


@pytest.mark.parametrize("output_format", ["tfjs_graph_model", "keras", "keras_saved_model"])
def test_unknown_class_is_named(files, tmp_path, output_format):
    with pytest.raises(ConversionError, match=r"layer 'times_two' has class 'TimesTwo'") as e:
        _convert(files["custom_class"], tmp_path / "out", output_format)
    assert "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "out")


def test_unknown_class_is_named_for_layers_output(files, tmp_path):
    with pytest.raises(ConversionError, match=r"layer 'times_two' \(TimesTwo\): class is not registered"):
        _convert(files["custom_class"], tmp_path / "out", "tfjs_layers_model")


def test_quantizing_a_model_without_weights_warns(files, tfjs, tmp_path, caplog):
    for selector in (True, ["*"]):
        out = tmp_path / f"out{selector is True}"
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            _convert(files["no_weights"], out, "tfjs_layers_model", quantize_uint8=selector)
        assert "no weights; nothing to quantize" in caplog.text
        inputs = INPUTS["no_weights"]()
        truth = tfjs.predict(files["no_weights"], inputs, kind="layers")[0]
        np.testing.assert_array_equal(tfjs.predict(out, inputs, kind="layers")[0], truth)


def test_a_pattern_that_matches_nothing_is_still_an_error(files, tmp_path):
    with pytest.raises(ConversionError, match=r"pattern 'nope\*' \(for uint8\) matches no weight"):
        _convert(files["functional"], tmp_path / "out", "tfjs_layers_model", quantize_uint8=["nope*"])


def test_same_file_same_bytes(files, tmp_path):
    """A tfjs-saved file converts to byte-identical layers models, run after run."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        _convert(files["functional"], out, "tfjs_layers_model")
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert "model_config" in _load(outs[0])["modelTopology"]  # the converters' wrapped form


REFERENCE = os.environ.get("REFERENCE_CONVERTER")


@pytest.mark.skipif(not REFERENCE, reason="REFERENCE_CONVERTER is not set")
def test_reference_output_of_a_keras3_sequential(tmp_path, tfjs):
    """The reference converter copies a Keras 3 h5 topology verbatim and names a
    Sequential's weights by their variable paths (``sequential/d/kernel``)."""
    import keras

    keras.utils.set_random_seed(21)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d", activation="tanh")])
    h5 = tmp_path / "m.h5"
    model.save(h5)
    ref = tmp_path / "ref"
    subprocess.run(
        [REFERENCE, "--input_format=keras", "--output_format=tfjs_layers_model", str(h5), str(ref)],
        check=True,
        capture_output=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    names = [w["name"] for g in _load(ref)["weightsManifest"] for w in g["weights"]]
    assert all(n.startswith(f"{model.name}/") for n in names), names  # the case, really
    x = np.random.default_rng(22).standard_normal((2, 3)).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0))
    bound = tolerances.keras_bound(model, [x])
    for fmt, kind in (("tfjs_layers_model", "layers"), ("tfjs_graph_model", "graph")):
        _convert(ref, tmp_path / fmt, fmt)
        assert tolerances.max_diff(tfjs.predict(tmp_path / fmt, [x], kind=kind)[0], want) <= bound
    _convert(ref, tmp_path / "k.h5", "keras")
    assert tolerances.max_diff(_keras_predict(tmp_path / "k.h5", [x])[1][0], want) <= bound
