"""Layers models as tfjs-layers 4.22 loads them: weight names, config fields, refusals.

The oracle is the real runtime (tests/js harness) against tf_keras's own predictions.
Tolerance (``tolerances.keras_bound``): the same model run in float64 gives
the size of float32 rounding on these outputs; tfjs and TensorFlow each differ from the
exact result by about that much, so their difference is bounded by twice it -- we allow
4x, and at least 8 float32 ulps of the output scale for models whose float32 and float64
runs agree exactly.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tolerances
from tfjs_runtime import require_js_runtime

from tfjsconv import api, datafiles
from tfjsconv.errors import ConversionError
from tfjsconv.layers import check, check_batch_norm, check_classes, fields
from tfjsconv.options import ConversionOptions

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def convert(src, out, **opts) -> Path:
    opts.setdefault("input_format", "keras")
    opts.setdefault("output_format", "tfjs_layers_model")
    api.convert(str(src), str(out), ConversionOptions(**opts))
    return Path(out)


# --- the shipped field list is the runtime's ------------------------------------------


def test_field_list_is_the_runtimes():
    require_js_runtime()
    done = subprocess.run(
        ["node", "layer_fields.js"], cwd=JS_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == datafiles.load_json("tfjs_layers_fields.json")


def test_field_list_covers_every_registered_layer_class():
    from tfjsconv.layers import compat

    layer_like = {c for c in compat.registered_classes() if c[0].isupper()}
    non_layers = {c for c in layer_like if c not in fields.accepted()}
    # What is left are containers, initializers, constraints, regularizers, optimizers.
    assert {"Dense", "LSTM", "SeparableConv2D", "Bidirectional"} <= set(fields.accepted())
    assert not {"Dense", "Conv2D"} & non_layers


@pytest.mark.parametrize("module", ["tf_keras", "keras"])
def test_default_configs_keep_no_ignored_field(module):
    """Every registered class Keras builds with default arguments converts: the fields tfjs
    ignores in its default config are all ones inference does not need."""
    import importlib
    import inspect

    from tfjsconv.layers import keras3

    mod = importlib.import_module(module).layers
    args = dict(
        units=2,
        filters=2,
        kernel_size=3,
        input_dim=3,
        output_dim=2,
        target_shape=(2,),
        dims=(1,),
        n=2,
        height=2,
        width=2,
        scale=1.0,
        num_tokens=2,
        factor=0.5,
        rate=0.5,
        stddev=0.1,
        pool_size=2,
        cropping=1,
        activation="relu",
        axes=1,
    )
    checked = 0
    for cls in sorted(fields.accepted()):
        layer_cls = getattr(mod, cls, None)
        if layer_cls is None or cls in (
            "InputLayer",
            "StackedRNNCells",
            "RNN",
            "Bidirectional",
            "TimeDistributed",
            "ConvLSTM2DCell",
        ):
            continue
        params = inspect.signature(layer_cls.__init__).parameters
        layer = layer_cls(**{k: v for k, v in args.items() if k in params})
        if module == "keras":
            import keras

            serialized = keras3.translate_layer(keras.saving.serialize_keras_object(layer), False, False)
        else:
            serialized = {
                "class_name": cls,
                "config": json.loads(json.dumps(layer.get_config(), default=float)),
            }
        fixed = fields.drop_ignored_fields({"class_name": "Sequential", "config": {"layers": [serialized]}})
        assert [str(p) for p in check_classes.class_problems(fixed) if "ignores" in p.reason] == [], cls
        checked += 1
    assert checked > 50


# --- old h5 files with uniquified weight names -----------------------------------------


def _uniquify(src: Path, dst: Path) -> None:
    """Rewrite an h5 the way old Keras stored a model built second in a session: each
    weight under ``<layer>_1/...`` while the layer group keeps the layer's name."""
    import shutil

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        mw = f["model_weights"]
        for lname in mw:
            group = mw[lname]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
            new = []
            for n in names:
                head, rest = n.split("/", 1)
                renamed = f"{head}_1/{rest}"
                group.move(n, renamed)
                new.append(renamed.encode())
            if names:
                group.attrs["weight_names"] = new


@pytest.fixture(scope="module")
def uniquified(tmp_path_factory):
    import tf_keras
    from tf_keras import layers

    tf_keras.utils.set_random_seed(11)
    root = tmp_path_factory.mktemp("uniq")
    inp = layers.Input((6, 6, 3))
    y = layers.Conv2D(4, 3, name="conv2d_1")(inp)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.Reshape((16, 4))(y)
    y = layers.Bidirectional(layers.LSTM(3, return_sequences=True, name="lstm"), name="bidi")(y)
    y = layers.GRU(4, reset_after=False, name="gru")(y)
    y = layers.Dense(3, name="dense_1")(y)
    model = tf_keras.Model(inp, y)
    model.save(root / "plain.h5")
    _uniquify(root / "plain.h5", root / "old.h5")
    return model, root / "old.h5"


def test_uniquified_names_are_what_tfjs_expects(uniquified, tmp_path):
    _, old = uniquified
    with h5py.File(old, "r") as f:
        stored = [
            n.decode() if isinstance(n, bytes) else n
            for n in f["model_weights/conv2d_1"].attrs["weight_names"]
        ]
    assert stored == ["conv2d_1_1/kernel:0", "conv2d_1_1/bias:0"]
    obj = json.loads((convert(old, tmp_path / "l") / "model.json").read_text())
    assert check.check_model_json(obj) == []
    names = [w["name"] for w in obj["weightsManifest"][0]["weights"]]
    assert names[:2] == ["conv2d_1/kernel", "conv2d_1/bias"]
    assert "bidi/forward_lstm/lstm_cell/kernel" in names and "gru/gru_cell/kernel" in names


def test_uniquified_h5_runs_in_tfjs(tfjs, uniquified, tmp_path):
    model, old = uniquified
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 3)).astype(np.float32)
    got = tfjs.predict(convert(old, tmp_path / "l"), [x], kind="layers")[0]
    want = model.predict(x, verbose=0)
    tol = tolerances.keras_bound(model, [x])
    print(f"uniquified max|tfjs-keras|={np.abs(got - want).max():.3g} tol={tol:.3g}")
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)


# --- config fields ---------------------------------------------------------------------


def _h5(tmp_path, name, build):
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    model = build()
    path = tmp_path / f"{name}.h5"
    model.save(path)
    return model, path


def _separable():
    import tf_keras
    from tf_keras import layers

    inp = layers.Input((7, 7, 3))
    y = layers.SeparableConv2D(4, 3, depth_multiplier=2, kernel_regularizer="l2", padding="same")(inp)
    return tf_keras.Model(inp, layers.SeparableConv2D(2, 3)(y))


def test_separable_conv_fields_dropped_and_runs(tfjs, tmp_path):
    """tf_keras writes kernel_initializer/regularizer/constraint for SeparableConv2D, which
    tfjs refuses ("Fields ... are invalid for SeparableConv2D"); they only matter in training."""
    model, src = _h5(tmp_path, "sep", _separable)
    out = convert(src, tmp_path / "l")
    cfg = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"][1]
    assert "kernel_initializer" not in cfg["config"] and cfg["config"]["depth_multiplier"] == 2
    x = np.random.default_rng(2).standard_normal((2, 7, 7, 3)).astype(np.float32)
    got = tfjs.predict(out, [x], kind="layers")[0]
    want = model.predict(x, verbose=0)
    tol = tolerances.keras_bound(model, [x])
    print(f"separable max|tfjs-keras|={np.abs(got - want).max():.3g} tol={tol:.3g}")
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)


def _dilated_transpose():
    import tf_keras
    from tf_keras import layers

    inp = layers.Input((5, 5, 2))
    return tf_keras.Model(inp, layers.Conv2DTranspose(3, 3, dilation_rate=2, name="up")(inp))


def _keepdims_pool():
    import tf_keras
    from tf_keras import layers

    inp = layers.Input((4, 3))
    return tf_keras.Model(inp, layers.GlobalAveragePooling1D(keepdims=True, name="pool")(inp))


@pytest.mark.parametrize(
    "name, build, field, shape",
    [
        ("dilated", _dilated_transpose, "dilation_rate=[2, 2]", (1, 5, 5, 2)),
        ("keepdims", _keepdims_pool, "keepdims=True", (1, 4, 3)),
    ],
)
def test_fields_that_change_inference_are_refused(tfjs, tmp_path, name, build, field, shape):
    model, src = _h5(tmp_path, name, build)
    with pytest.raises(ConversionError, match=field.replace("[", r"\[")) as info:
        convert(src, tmp_path / "refused")
    assert "\n" not in str(info.value) and "--output_format=tfjs_graph_model" in str(info.value)
    assert not (tmp_path / "refused").exists()
    # Written anyway, tfjs computes something else: the refusal is warranted.
    out = convert(src, tmp_path / "forced", skip_op_check=True)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = model.predict(x, verbose=0)
    got = tfjs.predict(out, [x], kind="layers")[0]
    assert got.shape != want.shape or np.abs(got - want).max() > 1e-3


def test_missing_weight_is_refused(tmp_path):
    import tf_keras
    from tf_keras import layers

    inp = layers.Input((3,))
    _, src = _h5(tmp_path, "mlp", lambda: tf_keras.Model(inp, layers.Dense(2, name="d")(inp)))
    with h5py.File(src, "r+") as f:
        group = f["model_weights/d"]
        group.attrs["weight_names"] = [b"d/kernel:0"]
    with pytest.raises(ConversionError, match=r"layer 'd' \(Dense\): no weight data for d/bias"):
        convert(src, tmp_path / "o")


def test_check_mirrors_loader_names():
    cfg = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "LSTM", "config": {"name": "lstm", "units": 2}},
                {"class_name": "Dense", "config": {"name": "d", "units": 3}},
            ]
        },
    }
    ok = [
        ("lstm/lstm_cell/kernel", (4, 8)),
        ("lstm/recurrent_kernel", (2, 8)),
        ("lstm/bias", (8,)),
        ("d/kernel", (2, 3)),
        ("d/bias", (3,)),
    ]
    assert check.check_model({"model_config": cfg}, ok) == []
    bad = [("lstm_1/kernel", (4, 8))] + ok[1:3] + [("d/kernel", (2, 4)), ("d/bias", (3,))]
    problems = [str(p) for p in check.check_model({"model_config": cfg}, bad)]
    assert problems == [
        "layer 'lstm_1' (?): weight lstm_1/kernel has no target variable in TensorFlow.js",
        "layer 'd' (Dense): weight d/kernel has shape [2, 4] but the layer creates ['?', 3]",
        "layer 'lstm' (LSTM): no weight data for lstm/kernel",
    ]


# --- masked Bidirectional RNNs -----------------------------------------------------------
# Keras's Bidirectional zeroes the outputs at masked timesteps when it returns sequences;
# tfjs-layers 4.22's rnn() repeats the previous output there (recurrent.ts, rnn()). Only
# what reads those values differs: refused then, converted when a recurrent layer (which
# skips masked steps) consumes them or when only the last output is returned.

TOKENS = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [3, 1, 0, 0, 0]], np.int32)


def _masked_bidi(keras_mod, stacked: bool, sequences: bool):
    """tf_keras: a functional model; Keras 3: a Sequential one (a Keras 3 functional model
    serializes the mask as a ``NotEqual`` op layer, which the .keras reader refuses)."""
    layers = keras_mod.layers
    stack = [
        layers.Embedding(10, 4, mask_zero=True, name="emb"),
        layers.Bidirectional(layers.LSTM(3, return_sequences=sequences), name="bidi"),
    ]
    if stacked:
        stack += [layers.Bidirectional(layers.LSTM(2), name="bidi2"), layers.Dense(2, name="head")]
    inp = layers.Input((5,), dtype="int32")
    if keras_mod.__name__ == "keras":
        return keras_mod.Sequential([inp] + stack)
    y = inp
    for layer in stack:
        y = layer(y)
    return keras_mod.Model(inp, y)


@pytest.mark.parametrize("keras3", [False, True], ids=["tf_keras_h5", "keras3_zip"])
@pytest.mark.parametrize("stacked, sequences", [(False, False), (True, True)], ids=["last", "stacked"])
def test_masked_bidirectional_runs_where_tfjs_agrees(tfjs, tmp_path, keras3, stacked, sequences):
    import importlib

    mod = importlib.import_module("keras" if keras3 else "tf_keras")
    mod.utils.set_random_seed(4)
    model = _masked_bidi(mod, stacked, sequences)
    src = tmp_path / ("m.keras" if keras3 else "m.h5")
    model.save(src)
    out = convert(src, tmp_path / "l", input_format="keras_keras" if keras3 else "keras")
    got = tfjs.predict(out, [TOKENS], kind="layers")[0]
    want = np.asarray(model.predict(TOKENS, verbose=0))
    # The float64 bound comes from tf_keras (float64 clones of Keras 3 models are not
    # built the same way): the same architecture carrying the same weights.
    import tf_keras

    twin = _masked_bidi(tf_keras, stacked, sequences)
    twin.set_weights(model.get_weights())
    tol = tolerances.keras_bound(twin, [TOKENS])
    print(
        f"masked bidi keras3={keras3} stacked={stacked} max diff {np.abs(got - want).max():.3g} tol={tol:.3g}"
    )
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)


@pytest.mark.parametrize("keras3", [False, True], ids=["tf_keras_h5", "keras3_zip"])
def test_masked_bidirectional_sequences_refused(tfjs, tmp_path, keras3):
    import importlib

    mod = importlib.import_module("keras" if keras3 else "tf_keras")
    mod.utils.set_random_seed(4)
    model = _masked_bidi(mod, stacked=False, sequences=True)
    src = tmp_path / ("m.keras" if keras3 else "m.h5")
    model.save(src)
    fmt = "keras_keras" if keras3 else "keras"
    with pytest.raises(
        ConversionError, match=r"layer 'bidi' \(Bidirectional\): with a mask .* outputs them"
    ) as info:
        convert(src, tmp_path / "refused", input_format=fmt)
    assert "\n" not in str(info.value) and "--output_format=tfjs_graph_model" in str(info.value)
    out = convert(src, tmp_path / "forced", input_format=fmt, skip_op_check=True)
    got = tfjs.predict(out, [TOKENS], kind="layers")[0]
    want = np.asarray(model.predict(TOKENS, verbose=0))
    assert np.all(want[TOKENS == 0] == 0)  # Keras: zeros at masked steps
    print(f"masked bidi sequences keras3={keras3}: tfjs differs by {np.abs(got - want).max():.3g}")
    assert np.abs(got - want).max() > 1e-4


# --- Keras 3 layers tfjs-layers 4.22 does not have ---------------------------------------


def test_multi_head_attention_refused_clearly(tmp_path):
    """tfjs-layers 4.22 registers no MultiHeadAttention (data/tfjs_layers_classes.json), so
    the .keras reader cannot name its weights for it: one line naming the layer and the
    graph format, for .keras and Keras 3 h5 alike."""
    import keras
    from keras import layers

    from tfjsconv.layers import compat

    assert "MultiHeadAttention" not in compat.registered_classes()
    inp = layers.Input((4, 8))
    model = keras.Model(inp, layers.MultiHeadAttention(2, 4, name="mha")(inp, inp))
    for name, fmt in (("m.keras", "keras_keras"), ("m.h5", "keras")):
        model.save(tmp_path / name)
        refusal = r"layer 'mha' \(MultiHeadAttention\): class is not registered"
        with pytest.raises(ConversionError, match=refusal) as info:
            convert(tmp_path / name, tmp_path / f"out_{fmt}", input_format=fmt)
        assert "\n" not in str(info.value) and "--output_format=tfjs_graph_model" in str(info.value)
        assert not (tmp_path / f"out_{fmt}").exists()


def test_reference_style_layers_model_with_uniquified_names_runs(tfjs, uniquified, tmp_path):
    """The reference converter copies an old h5's names into the layers model
    (``conv2d_1_1/kernel``); layers -> layers renames them for tfjs."""
    model, old = uniquified
    ours = convert(old, tmp_path / "l")
    obj = json.loads((ours / "model.json").read_text())
    for w in obj["weightsManifest"][0]["weights"]:
        head, rest = w["name"].split("/", 1)
        w["name"] = f"{head}_1/{rest}"  # what the stored h5 names look like
    (ours / "model.json").write_text(json.dumps(obj))
    assert check.check_model_json(obj)  # as written, tfjs would refuse it
    out = convert(ours / "model.json", tmp_path / "l2", input_format="tfjs_layers_model")
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 3)).astype(np.float32)
    got = tfjs.predict(out, [x], kind="layers")[0]
    np.testing.assert_allclose(
        got, model.predict(x, verbose=0), atol=tolerances.keras_bound(model, [x]), rtol=0
    )


# --- what tfjs-layers 4.22 loads but then rejects or computes otherwise ------------------


def _one_layer(shape, layer):
    """A one-layer model with weights away from their defaults (BatchNormalization's
    defaults make it the identity, whatever axis tfjs normalizes)."""

    def build():
        import tf_keras

        inp = tf_keras.layers.Input(shape, name="x")
        model = tf_keras.Model(inp, layer()(inp))
        rng = np.random.default_rng(6)
        model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in model.get_weights()])
        return model

    return build


def _k2(cls: str, *args: Any, **kw: Any) -> Any:
    def make():
        import tf_keras

        return getattr(tf_keras.layers, cls)(*args, **kw)

    return make


# (id, build, refusal naming the layer, input)
_REFUSED = [
    (
        "exponential",
        _one_layer((6,), _k2("Dense", 3, activation="exponential", name="d")),
        r"layer 'd' \(Dense\): activation='exponential' does not exist in TensorFlow.js 4.22",
        (2, 6),
    ),
    (
        "leaky_relu_layer",
        _one_layer((6,), _k2("Activation", "leaky_relu", name="act")),
        r"layer 'act' \(Activation\): activation='leaky_relu' does not exist",
        (2, 6),
    ),
    (
        "recurrent_activation",
        _one_layer((3, 4), _k2("LSTM", 2, recurrent_activation="exponential", name="rnn")),
        r"layer 'rnn' \(LSTM\): recurrent_activation='exponential' does not exist",
        (2, 3, 4),
    ),
    (
        "relu_slope",
        _one_layer((6,), _k2("ReLU", 2.0, 0.1, 0.2, name="r")),
        r"layer 'r' \(ReLU\): TensorFlow.js 4.22 ignores negative_slope=.*threshold=",
        (2, 6),
    ),
    (
        "elu_alpha",
        _one_layer((6,), _k2("ELU", 0.5, name="e")),
        r"layer 'e' \(ELU\): alpha=0.5 is not supported by TensorFlow.js 4.22",
        (2, 6),
    ),
    (
        "causal",
        _one_layer((5, 4), _k2("Conv1D", 2, 3, padding="causal", name="c")),
        r"layer 'c' \(Conv1D\): padding='causal' is not implemented",
        (2, 5, 4),
    ),
    (
        "bilinear",
        _one_layer((3, 3, 2), _k2("UpSampling2D", 2, interpolation="bilinear", name="up")),
        r"layer 'up' \(UpSampling2D\): interpolation='bilinear' is computed differently",
        (2, 3, 3, 2),
    ),
    (
        "bn_axis1",
        _one_layer((4, 5), _k2("BatchNormalization", axis=1, name="bn")),
        r"layer 'bn' \(BatchNormalization\): axis=1 on a rank-3 input is not the last axis",
        (2, 4, 5),
    ),
    (
        "center_crop",
        _one_layer((6, 6, 3), _k2("CenterCrop", 4, 4, name="crop")),
        r"layer 'crop' \(CenterCrop\): TensorFlow.js 4.22 loads this preprocessing layer but fails",
        (2, 6, 6, 3),
    ),
    (
        "resizing",
        _one_layer((6, 6, 3), _k2("Resizing", 4, 5, name="rs")),
        r"layer 'rs' \(Resizing\): TensorFlow.js 4.22 loads this preprocessing layer but fails",
        (2, 6, 6, 3),
    ),
]


@pytest.mark.parametrize("name, build, refusal, shape", _REFUSED, ids=[r[0] for r in _REFUSED])
def test_loads_but_runs_otherwise_is_refused(tfjs, tmp_path, name, build, refusal, shape):
    """One line naming the layer and the graph format; written anyway (--skip_op_check),
    tfjs fails or computes something else: the refusal is warranted."""
    from tfjs_runtime import TfjsError

    model, src = _h5(tmp_path, name, build)
    with pytest.raises(ConversionError, match=refusal) as info:
        convert(src, tmp_path / "refused")
    assert "\n" not in str(info.value) and "--output_format=tfjs_graph_model" in str(info.value)
    assert not (tmp_path / "refused").exists()
    out = convert(src, tmp_path / "forced", skip_op_check=True)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = model.predict(x, verbose=0)
    try:
        got = tfjs.predict(out, [x], kind="layers")[0]
    except TfjsError:
        return
    assert got.shape != want.shape or np.abs(got - want).max() > 1e-3


def test_batch_norm_on_the_last_axis_is_not_refused():
    """tf_keras saves a built BatchNormalization's axis as a positive list ([2] for -1 on
    rank 3): refused only where it is not the input's last axis."""

    def model(axis, shape):
        layers = [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [None, *shape]}},
            {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": axis}},
        ]
        return {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}

    assert check_batch_norm.batch_norm_problems(model([2], (4, 5))) == []
    assert check_batch_norm.batch_norm_problems(model(-1, (4, 5))) == []
    assert check_batch_norm.batch_norm_problems(model([1], (5,))) == []
    assert [p.layer for p in check_batch_norm.batch_norm_problems(model([1], (4, 5)))] == ["bn"]
    assert [p.layer for p in check_batch_norm.batch_norm_problems(model(2, (3, 4, 5)))] == ["bn"]


def test_keras3_hard_sigmoid_is_refused(tmp_path):
    """Keras 3's hard_sigmoid is relu6(x + 3) / 6; tfjs's (and Keras 2's) is 0.2x + 0.5."""
    import keras

    inp = keras.layers.Input((6,))
    model = keras.Model(inp, keras.layers.Dense(3, activation="hard_sigmoid", name="d")(inp))
    model.save(tmp_path / "m.keras")
    with pytest.raises(
        ConversionError, match=r"layer 'd' \(Dense\): Keras 3's activation='hard_sigmoid'"
    ) as info:
        convert(tmp_path / "m.keras", tmp_path / "out", input_format="keras_keras")
    assert "\n" not in str(info.value) and "--output_format=tfjs_graph_model" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_identity_silu_and_l1_l2_are_translated_and_run(tfjs, tmp_path):
    """Keras 3 ``silu`` -> tfjs ``swish``; ``L1``/``L2`` -> ``L1L2``; ``activity_regularizer``
    dropped; ``Identity`` -> ``Activation('linear')``: tfjs loads the result and matches Keras."""
    import keras

    inp = keras.layers.Input((6,))
    y = keras.layers.Dense(
        4,
        activation="silu",
        kernel_regularizer=keras.regularizers.L2(0.01),
        bias_regularizer=keras.regularizers.L1(0.02),
        activity_regularizer=keras.regularizers.L1(0.01),
        name="d",
    )(inp)
    y = keras.layers.Identity(name="same")(y)
    model = keras.Model(
        inp, keras.layers.LSTM(3, activation="silu", name="rnn")(keras.layers.Reshape((2, 2))(y))
    )
    model.save(tmp_path / "m.keras")
    out = convert(tmp_path / "m.keras", tmp_path / "l", input_format="keras_keras")
    layers = json.loads((out / "model.json").read_text())["modelTopology"]["model_config"]["config"]["layers"]
    by_name = {layer["config"]["name"]: layer for layer in layers}
    assert by_name["d"]["config"]["activation"] == "swish"
    assert by_name["d"]["config"]["kernel_regularizer"]["class_name"] == "L1L2"
    # Keras 3 stores the factors as float32 values.
    assert by_name["d"]["config"]["kernel_regularizer"]["config"] == {"l1": 0.0, "l2": pytest.approx(0.01)}
    assert by_name["d"]["config"]["bias_regularizer"]["config"] == {"l1": pytest.approx(0.02), "l2": 0.0}
    assert "activity_regularizer" not in by_name["d"]["config"]
    assert (
        by_name["same"]["class_name"] == "Activation" and by_name["same"]["config"]["activation"] == "linear"
    )
    assert by_name["rnn"]["config"]["activation"] == "swish"
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0))
    got = tfjs.predict(out, [x], kind="layers")[0]
    np.testing.assert_allclose(got, want, atol=tolerances.keras_bound(model, [x]), rtol=0)
