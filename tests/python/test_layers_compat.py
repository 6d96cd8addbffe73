"""Refusals of layers models that tfjs-layers 4.22 cannot load (``tfjsconv.layers.check``).

The oracle is the real runtime: the shipped class list must equal what the installed
@tensorflow/tfjs registers, each model the converter refuses must really fail in
``tf.loadLayersModel`` when written anyway (``--skip_op_check``), and the control model
converts without a word, loads and predicts.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tolerances
from tfjs_runtime import TfjsError, require_js_runtime

from tfjsconv import cli
from tfjsconv.layers import check, check_classes, compat

JS_DIR = Path(__file__).resolve().parents[1] / "js"

_LIST_CLASSES = """
const tf = require('@tensorflow/tfjs');
console.log(JSON.stringify(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap).sort()));
"""


def test_class_list_is_the_runtimes():
    require_js_runtime()
    done = subprocess.run(
        ["node", "-e", _LIST_CLASSES], cwd=JS_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert set(json.loads(done.stdout)) == compat.registered_classes()


def _layer(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, **config}}


def test_nested_layers_are_all_checked():
    config = _layer(
        "Functional",
        "m",
        layers=[
            _layer("InputLayer", "in"),
            _layer("Subtract", "sub"),
            _layer("Bidirectional", "bi", layer=_layer("GRU", "gru", reset_after=True)),
            _layer(
                "RNN",
                "rnn",
                cell=_layer(
                    "StackedRNNCells",
                    "cells",
                    cells=[_layer("GRUCell", "c1", reset_after=True), _layer("LSTMCell", "c2")],
                ),
            ),
            _layer("TimeDistributed", "td", layer=_layer("Dense", "dense")),
            _layer("Sequential", "inner", layers=[_layer("GRU", "gru2", reset_after=False)]),
        ],
    )
    assert sorted(map(str, check_classes.class_problems(config))) == [
        "layer 'c1' (GRUCell): reset_after=True is not supported by TensorFlow.js 4.22",
        "layer 'gru' (GRU): reset_after=True is not supported by TensorFlow.js 4.22",
        "layer 'sub' (Subtract): class is not registered in TensorFlow.js 4.22",
    ]
    # Keras 1/2.0-era Sequential configs are a bare list of layers.
    old_style = {"class_name": "Sequential", "config": [_layer("Subtract", "s")]}
    assert [str(p) for p in check_classes.class_problems(old_style)] == [
        "layer 's' (Subtract): class is not registered in TensorFlow.js 4.22"
    ]
    assert check.check_model(None, []) == []


def _convert(h5: Path, out: Path, *flags: str):
    """(exit code, stderr lines) of a CLI conversion."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(
        ["--input_format=keras", "--output_format=tfjs_layers_model", *flags, str(h5), str(out)],
        stdout=stdout,
        stderr=stderr,
    )
    return code, stderr.getvalue().splitlines()


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    import tf_keras
    from tf_keras import layers

    root = tmp_path_factory.mktemp("compat")
    seq = layers.Input((4, 3), name="seq")
    a = layers.Input((2,), name="a")
    b = layers.Input((2,), name="b")
    models = {
        "gru_default": tf_keras.Model(seq, layers.GRU(5, name="gru")(seq)),  # Keras default: reset_after=True
        "subtract": tf_keras.Model([a, b], layers.Subtract(name="sub")([a, b])),
        "gru_v1": tf_keras.Model(seq, layers.GRU(5, reset_after=False, name="gru")(seq)),
    }
    paths = {}
    for name, model in models.items():
        paths[name] = root / f"{name}.h5"
        model.save(paths[name])
    return paths


@pytest.mark.parametrize(
    "name, expected, tfjs_says, inputs",
    [
        (
            "gru_default",
            "layer 'gru' (GRU): reset_after=True",
            "reset_after",
            [np.ones((1, 4, 3), np.float32)],
        ),
        (
            "subtract",
            "layer 'sub' (Subtract): class is not registered",
            "Subtract",
            [np.ones((1, 2), np.float32), np.ones((1, 2), np.float32)],
        ),
    ],
)
def test_refused_models_really_fail_in_tfjs(tfjs, keras_files, tmp_path, name, expected, tfjs_says, inputs):
    code, lines = _convert(keras_files[name], tmp_path / name)
    assert code == 1 and len(lines) == 1, lines
    assert expected in lines[0] and "--output_format=tfjs_graph_model" in lines[0], lines
    assert not (tmp_path / name).exists()
    # Written anyway, the model really fails in tfjs.
    code, lines = _convert(keras_files[name], tmp_path / name, "--skip_op_check")
    assert code == 0 and any(expected in line for line in lines), lines
    with pytest.raises(TfjsError, match=tfjs_says):
        tfjs.predict(tmp_path / name, inputs, kind="layers")


def test_loadable_model_gets_no_warning(tfjs, keras_files, tmp_path):
    import tf_keras

    assert _convert(keras_files["gru_v1"], tmp_path / "ok") == (0, [])
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 4, 3)
    model = tf_keras.models.load_model(keras_files["gru_v1"], compile=False)
    tol = tolerances.keras_bound(model, [x])
    got = tfjs.predict(tmp_path / "ok", [x], kind="layers")[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=tol, rtol=0)
