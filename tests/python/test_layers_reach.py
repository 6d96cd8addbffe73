"""The layers path's reach: what tfjs-layers 4.22 cannot hold is refused naming it
(and the graph format of the same model runs), the frameworks' own initializers,
regularizers and constraints convert, and dtypes tfjs has no tensors for are mapped
to the ones it uses -- each checked by running the converted model in the real tfjs.

Parity bounds (``tolerances``): a model computed by tfjs in float32 against TF must
agree within 4x TF's own float32-vs-float64 gap on that input, at least 8 float32
ulps of the output scale (``keras_bound``, or ``tolerance`` given both runs). A float64
model has no wider twin: its float32 twin (same config in float32, same weights) is
the float32 run, and the float64 model the exact one.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import tolerances

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.layers import keras3
from tfjsconv.options import ConversionOptions

pytestmark = pytest.mark.tfjs


def _rng(seed: int):
    return np.random.default_rng(seed)


def _refused_models(k):
    """name -> (tf_keras model, input shape, refused layer name, its class)."""
    import tensorflow as tf

    x = k.layers.Input((3,))
    tfop = k.Model(x, tf.math.abs(x) * 2.0)
    return {
        "Cropping1D": (
            k.Sequential([k.layers.Input((6, 3)), k.layers.Cropping1D((1, 2), name="crop")]),
            "crop",
        ),
        "UpSampling3D": (
            k.Sequential([k.layers.Input((2, 2, 2, 1)), k.layers.UpSampling3D(name="up")]),
            "up",
        ),
        "Conv2D": (
            k.Sequential([k.layers.Input((5, 5, 4)), k.layers.Conv2D(4, 3, groups=2, name="gconv")]),
            "gconv",
        ),
        "Normalization": (
            k.Sequential(
                [
                    k.layers.Input((2,)),
                    k.layers.Normalization(mean=[1.0, 2.0], variance=[1.0, 4.0], name="norm"),
                ]
            ),
            "norm",
        ),
        "TFOpLambda": (tfop, "tf.math.abs', 'tf.math.multiply"),
    }


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """class -> (h5 path, refused layer name, inputs)."""
    import tf_keras as k

    root = tmp_path_factory.mktemp("refused")
    k.utils.set_random_seed(7)
    out = {}
    for cls, (model, layer) in _refused_models(k).items():
        path = str(root / f"{cls}.h5")
        model.save(path)
        shape = (2, *model.inputs[0].shape[1:])
        out[cls] = (path, layer, [_rng(len(out)).standard_normal(shape).astype(np.float32)])
    return out


def _convert(src, out, input_format, output_format, **kw):
    api.convert(
        str(src), str(out), ConversionOptions(input_format=input_format, output_format=output_format, **kw)
    )


@pytest.mark.parametrize("cls", ["Cropping1D", "UpSampling3D", "Conv2D", "Normalization", "TFOpLambda"])
def test_refused_naming_the_class_and_the_graph_format_runs(refused, tfjs, tmp_path, cls):
    import tf_keras as k

    path, layer, inputs = refused[cls]
    with pytest.raises(ConversionError, match=rf"layers? '{layer}' \({cls}\)") as e:
        _convert(path, tmp_path / "layers", "keras", "tfjs_layers_model")
    assert "tfjs_graph_model" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "layers").exists()
    _convert(path, tmp_path / "graph", "keras", "tfjs_graph_model")
    got = tfjs.predict(tmp_path / "graph", inputs, kind="graph")
    model = k.models.load_model(path, compile=False)
    want = model.predict(inputs[0], verbose=0)
    assert tolerances.max_diff(got[0], want) <= tolerances.keras_bound(model, inputs)


def test_refused_keras3_class(tmp_path, tfjs):
    import keras

    model = keras.Sequential([keras.Input((6, 3)), keras.layers.Cropping1D((1, 2), name="crop")])
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(ConversionError, match=r"layer 'crop' \(Cropping1D\)"):
        _convert(path, tmp_path / "layers", "keras_keras", "tfjs_layers_model")
    x = _rng(9).standard_normal((2, 6, 3)).astype(np.float32)
    _convert(path, tmp_path / "graph", "keras_keras", "tfjs_graph_model")
    np.testing.assert_array_equal(tfjs.predict(tmp_path / "graph", [x], kind="graph")[0], x[:, 1:4])


def test_framework_initializers_regularizers_constraints_convert(tmp_path, tfjs):
    """TensorFlow's own Constant (tf_keras.applications.EfficientNetV2's biases; a
    non-scalar one tfjs cannot build), Keras's lecun_normal (a class tfjs names
    LeCunNormal), a regularizer, and a constraint tfjs would apply to the loaded kernel."""
    import tensorflow as tf
    import tf_keras as k

    k.utils.set_random_seed(3)
    model = k.Sequential(
        [
            k.layers.Input((3,)),
            k.layers.Dense(
                4,
                bias_initializer=tf.constant_initializer(0.5),
                kernel_initializer="lecun_normal",
                kernel_constraint="unit_norm",
                kernel_regularizer="l2",
                activation="relu",
            ),
            k.layers.Dense(2, bias_initializer=tf.constant_initializer([0.1, 0.2])),
        ]
    )
    path = str(tmp_path / "m.h5")
    model.save(path)
    with h5py.File(path, "r") as f:  # the case of the issue, really
        assert '"module": "tensorflow.python.ops.init_ops_v2"' in str(f.attrs["model_config"])
    _convert(path, tmp_path / "layers", "keras", "tfjs_layers_model")
    x = _rng(4).standard_normal((2, 3)).astype(np.float32)
    got = tfjs.predict(tmp_path / "layers", [x], kind="layers")[0]
    want = model.predict(x, verbose=0)
    bound = tolerances.keras_bound(model, [x])
    assert tolerances.max_diff(got, want) <= bound
    # ... and the layers model (tfjs's spellings) back to Keras computes the same.
    _convert(tmp_path / "layers" / "model.json", tmp_path / "back.h5", "tfjs_layers_model", "keras")
    back = k.models.load_model(str(tmp_path / "back.h5"), compile=False)
    assert tolerances.max_diff(back.predict(x, verbose=0), want) <= bound


def test_keras3_framework_objects_convert(tmp_path, tfjs):
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_initializer="lecun_uniform",
                bias_initializer=keras.initializers.Constant(0.25),
                kernel_regularizer=keras.regularizers.OrthogonalRegularizer(),
            ),
        ]
    )
    path = tmp_path / "m.keras"
    model.save(path)
    _convert(path, tmp_path / "layers", "keras_keras", "tfjs_layers_model")
    x = _rng(6).standard_normal((2, 3)).astype(np.float32)
    got = tfjs.predict(tmp_path / "layers", [x], kind="layers")[0]
    want = np.asarray(model.predict(x, verbose=0))
    assert tolerances.max_diff(got, want) <= tolerances.keras_bound(model, [x])


@pytest.mark.parametrize(
    ("obj", "named"),
    [
        (
            {"module": "my_pkg.inits", "class_name": "MyInit", "config": {}, "registered_name": "MyInit"},
            "MyInit",
        ),
        ({"module": "keras.initializers", "class_name": "X", "config": {}, "registered_name": "pkg>X"}, "X"),
        # A TensorFlow module, but not a class of the fixed table.
        (
            {
                "module": "tensorflow.python.ops.init_ops_v2",
                "class_name": "Evil",
                "config": {},
                "registered_name": "Evil",
            },
            "Evil",
        ),
    ],
)
def test_custom_objects_are_still_refused(obj, named):
    with pytest.raises(ConversionError, match=rf"custom or code-carrying Keras object '{named}'"):
        keras3.check_safe(obj, "layer 'd'", allow_unsafe=False)


def test_custom_initializer_in_a_file_is_refused(tmp_path):
    import tf_keras as k

    @k.saving.register_keras_serializable(package="my_pkg")
    class HalfInit(k.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return k.backend.constant(0.5, shape=shape, dtype=dtype)

    model = k.Sequential([k.layers.Input((3,)), k.layers.Dense(2, bias_initializer=HalfInit())])
    path = str(tmp_path / "m.h5")
    model.save(path)
    with pytest.raises(ConversionError, match=r"custom or code-carrying Keras object 'HalfInit'"):
        _convert(path, tmp_path / "layers", "keras", "tfjs_layers_model")


def _layer_dtypes(model_json_dir) -> set[str]:
    obj = json.loads((model_json_dir / "model.json").read_text())
    text = json.dumps(obj["modelTopology"])
    found = {m.split('"')[0] for m in text.split('"dtype": "')[1:]}
    found |= {w["dtype"] for g in obj["weightsManifest"] for w in g["weights"]}
    return found


def test_int64_embedding_input_of_a_keras_saved_model(tmp_path, tfjs):
    """The silent failure of the issue: the InputLayer kept int64, tfjs refused every feed."""
    import tf_keras as k

    k.utils.set_random_seed(11)
    x = k.layers.Input((4,), dtype="int64", name="input")
    model = k.Model(x, k.layers.Embedding(10, 3)(x))
    model.save(tmp_path / "sm", save_format="tf")
    _convert(tmp_path / "sm", tmp_path / "layers", "keras_saved_model", "tfjs_layers_model")
    assert _layer_dtypes(tmp_path / "layers") == {"int32", "float32"}
    ids = np.array([[1, 2, 3, 9], [0, 0, 5, 7]], dtype=np.int64)
    got = tfjs.predict(tmp_path / "layers", [ids.astype(np.int32)], kind="layers")[0]
    np.testing.assert_array_equal(got, model.predict(ids, verbose=0))  # a gather: exact


def test_keras3_int64_input(tmp_path, tfjs):
    import keras

    keras.utils.set_random_seed(12)
    x = keras.Input((4,), dtype="int64", name="ids")
    model = keras.Model(x, keras.layers.Embedding(10, 3)(x))
    model.save(tmp_path / "m.keras")
    _convert(tmp_path / "m.keras", tmp_path / "layers", "keras_keras", "tfjs_layers_model")
    assert "int64" not in _layer_dtypes(tmp_path / "layers")
    ids = np.array([[1, 2, 3, 9]], dtype=np.int64)
    got = tfjs.predict(tmp_path / "layers", [ids.astype(np.int32)], kind="layers")[0]
    np.testing.assert_array_equal(got, np.asarray(model.predict(ids, verbose=0)))


def test_float64_model(tmp_path, tfjs):
    """float64 input, layer and weights: tfjs computes in float32."""
    import tf_keras as k

    k.utils.set_random_seed(13)

    def build(dtype):
        return k.Sequential(
            [
                k.layers.Input((3,), dtype=dtype),
                k.layers.Dense(4, activation="tanh", dtype=dtype),
                k.layers.Dense(2, dtype=dtype),
            ]
        )

    model64 = build("float64")
    model32 = build("float32")
    model32.set_weights([w.astype(np.float32) for w in model64.get_weights()])
    path = str(tmp_path / "m.h5")
    model64.save(path)
    _convert(path, tmp_path / "layers", "keras", "tfjs_layers_model")
    assert _layer_dtypes(tmp_path / "layers") == {"float32"}
    x = _rng(14).standard_normal((2, 3))
    ref64 = model64.predict(x, verbose=0)
    ref32 = model32.predict(x.astype(np.float32), verbose=0)
    got = tfjs.predict(tmp_path / "layers", [x.astype(np.float32)], kind="layers")[0]
    bound, _ = tolerances.tolerance([ref32], [ref64])
    assert tolerances.max_diff(got, ref64) <= bound
    assert os.path.isfile(tmp_path / "layers" / "model.json")
