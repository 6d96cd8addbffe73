"""The coverage corpus: small models generated from the class lists, not picked by hand.

One case per Keras layer class tfjs-layers 4.22 registers
(``converter/tfjsconv/data/tfjs_layers_classes.json``), per activation name Keras
knows, per initializer/regularizer/constraint/optimizer class in that list, plus the
configuration variants users hit (recurrent flags, masking, wrappers, conv geometry,
old-style h5 weight names) and graph-side cases (``tf.Module`` control flow, hash
tables, Keras 3 functional/subclassed exports).

A Keras case is one builder ``build(K) -> model`` written against the API both
``tf_keras`` (Keras 2) and ``keras`` (Keras 3) share; each flavor that can build it is
saved (Keras 2 -> ``.h5``, Keras 3 -> ``.keras``) and goes through both converter
paths. ``tests/python/test_coverage_corpus.py`` runs them; ``tools/coverage_table.py``
turns the results into the docs tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
CLASSES_JSON = REPO_ROOT / "converter" / "tfjsconv" / "data" / "tfjs_layers_classes.json"
SEED = 1234
BATCH = 2

# Keras flavor -> (saved file suffix, input_format) and the paths each one goes through.
FLAVORS = {"k2": (".h5", "keras"), "k3": (".keras", "keras_keras")}
PATHS = ("k2:layers", "k2:graph", "k3:layers", "k3:graph")
SM_PATH = "sm:graph"  # tf.Module / exported SavedModel -> tfjs_graph_model

Build = Callable[[Any], Any]
InputsFn = Callable[[], list[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One corpus entry: ``build(K)`` for Keras cases, ``saved_model(dir)`` for graph ones."""

    id: str
    inputs: InputsFn
    build: Build | None = None
    saved_model: Callable[[str], None] | None = None
    float64: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None
    note: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return PATHS if self.build is not None else (SM_PATH,)


def rand(shape: Sequence[int], seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def ints(shape: Sequence[int], high: int, seed: int = 3, low: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, tuple(shape)).astype(np.int32)


def _f(*shape: int) -> InputsFn:
    return lambda: [rand((BATCH, *shape))]


def _functional(K: Any, shape: Sequence[int], *layers: Any, dtype: str = "float32") -> Any:
    inp = K.Input(shape=tuple(shape), dtype=dtype, name="x")
    x = inp
    for layer in layers:
        x = layer(x)
    return K.Model(inp, x)


def _two_branch(K: Any, merge: Any) -> Any:
    """One input, two Dense branches, merged: merge layers without multi-input plumbing."""
    inp = K.Input(shape=(6,), name="x")
    a = K.layers.Dense(4, name="a")(inp)
    b = K.layers.Dense(4, name="b")(inp)
    return K.Model(inp, merge([a, b]))


# --- one case per registered layer class -------------------------------------------


# class -> (builder, inputs). A class missing from a flavor's ``layers`` module makes that
# flavor "not buildable" (recorded, not a failure).
def _layer_case(cls: str) -> tuple[Build, InputsFn] | None:  # noqa: C901 - a table
    def lay(*args: Any, **kw: Any) -> Callable[[Any], Any]:
        return lambda K: getattr(K.layers, cls)(*args, **kw)

    def simple(shape: Sequence[int], *args: Any, **kw: Any) -> tuple[Build, InputsFn]:
        return (lambda K: _functional(K, shape, lay(*args, **kw)(K)), _f(*shape))

    img, seq, vol = (6, 6, 3), (5, 4), (4, 4, 4, 2)
    table: dict[str, tuple[Build, InputsFn]] = {
        "Activation": simple((6,), "tanh"),
        "AlphaDropout": simple((6,), 0.3),
        "AveragePooling1D": simple(seq, 2),
        "AveragePooling2D": simple(img, 2),
        "AveragePooling3D": simple(vol, 2),
        "BatchNormalization": simple(img),
        "Bidirectional": (lambda K: _functional(K, seq, K.layers.Bidirectional(K.layers.LSTM(3))), _f(*seq)),
        "CategoryEncoding": (
            lambda K: _functional(
                K, (4,), K.layers.CategoryEncoding(num_tokens=7, output_mode="multi_hot"), dtype="int32"
            ),
            lambda: [ints((BATCH, 4), 7)],
        ),
        "CenterCrop": simple(img, 4, 4),
        "Conv1D": simple(seq, 3, 2),
        "Conv2D": simple(img, 3, 3),
        "Conv2DTranspose": simple(img, 3, 3),
        "Conv3D": simple(vol, 2, 2),
        "Conv3DTranspose": simple(vol, 2, 2),
        "ConvLSTM2D": simple((3, 5, 5, 2), 2, 3),
        "Cropping2D": simple(img, 1),
        "Dense": simple((6,), 4),
        "DepthwiseConv2D": simple(img, 3),
        "Dropout": simple((6,), 0.5),
        "ELU": simple((6,), 0.7),
        "Embedding": (
            lambda K: _functional(K, (5,), K.layers.Embedding(9, 3), dtype="int32"),
            lambda: [ints((BATCH, 5), 9)],
        ),
        "Flatten": simple(img),
        "GRU": simple(seq, 3),
        "GaussianDropout": simple((6,), 0.3),
        "GaussianNoise": simple((6,), 0.3),
        "GlobalAveragePooling1D": simple(seq),
        "GlobalAveragePooling2D": simple(img),
        "GlobalMaxPooling1D": simple(seq),
        "GlobalMaxPooling2D": simple(img),
        "Identity": simple((6,)),
        "LSTM": simple(seq, 3),
        "LayerNormalization": simple(seq),
        "LeakyReLU": simple((6,)),
        "Masking": (
            lambda K: _functional(K, seq, K.layers.Masking(0.0), K.layers.SimpleRNN(3)),
            lambda: [_with_zero_steps(rand((BATCH, *seq)))],
        ),
        "MaxPooling1D": simple(seq, 2),
        "MaxPooling2D": simple(img, 2),
        "MaxPooling3D": simple(vol, 2),
        "PReLU": simple((6,)),
        "Permute": simple(seq, (2, 1)),
        "ReLU": simple((6,), 2.0, 0.1, 0.2),
        "RandomWidth": simple(img, 0.2),
        "RepeatVector": simple((6,), 3),
        "Rescaling": simple(img, 0.5, 0.25),
        "Reshape": simple((6,), (3, 2)),
        "Resizing": simple(img, 4, 5),
        "SeparableConv2D": simple(img, 3, 3),
        "SimpleRNN": simple(seq, 3),
        "Softmax": simple((6,)),
        "SpatialDropout1D": simple(seq, 0.3),
        "ThresholdedReLU": simple((6,), 0.5),
        "TimeDistributed": (
            lambda K: _functional(K, seq, K.layers.TimeDistributed(K.layers.Dense(2))),
            _f(*seq),
        ),
        "UpSampling2D": simple(img, 2),
        "ZeroPadding2D": simple(img, 1),
        # Cells and containers.
        "GRUCell": (lambda K: _functional(K, seq, K.layers.RNN(K.layers.GRUCell(3))), _f(*seq)),
        "LSTMCell": (lambda K: _functional(K, seq, K.layers.RNN(K.layers.LSTMCell(3))), _f(*seq)),
        "SimpleRNNCell": (lambda K: _functional(K, seq, K.layers.RNN(K.layers.SimpleRNNCell(3))), _f(*seq)),
        "RNN": (
            lambda K: _functional(K, seq, K.layers.RNN(K.layers.LSTMCell(3), return_sequences=True)),
            _f(*seq),
        ),
        "StackedRNNCells": (
            lambda K: _functional(
                K, seq, K.layers.RNN(K.layers.StackedRNNCells([K.layers.LSTMCell(3), K.layers.GRUCell(2)]))
            ),
            _f(*seq),
        ),
        "ConvLSTM2DCell": (
            lambda K: _functional(K, (3, 5, 5, 2), K.layers.RNN(K.layers.ConvLSTM2DCell(2, 3))),
            _f(3, 5, 5, 2),
        ),
        # Merge layers.
        "Add": (lambda K: _two_branch(K, K.layers.Add()), _f(6)),
        "Average": (lambda K: _two_branch(K, K.layers.Average()), _f(6)),
        "Concatenate": (lambda K: _two_branch(K, K.layers.Concatenate()), _f(6)),
        "Dot": (lambda K: _two_branch(K, K.layers.Dot(axes=1)), _f(6)),
        "Maximum": (lambda K: _two_branch(K, K.layers.Maximum()), _f(6)),
        "Minimum": (lambda K: _two_branch(K, K.layers.Minimum()), _f(6)),
        "Multiply": (lambda K: _two_branch(K, K.layers.Multiply()), _f(6)),
        # Model classes.
        "InputLayer": (lambda K: _functional(K, (6,), K.layers.Dense(3)), _f(6)),
        "Functional": (lambda K: _two_outputs(K), _f(6)),
        "Sequential": (
            lambda K: K.Sequential(
                [K.Input(shape=(6,)), K.layers.Dense(4, activation="relu"), K.layers.Dense(2)]
            ),
            _f(6),
        ),
        "Model": (lambda K: _nested_model(K), _f(6)),
    }
    return table.get(cls)


def _two_outputs(K: Any) -> Any:
    """A functional model with two heads (Keras 2 class ``Functional``/``Model``)."""
    inp = K.Input(shape=(6,), name="x")
    h = K.layers.Dense(4, activation="relu", name="h")(inp)
    return K.Model(
        inp, [K.layers.Dense(2, name="p")(h), K.layers.Dense(3, activation="softmax", name="q")(h)]
    )


def _nested_model(K: Any) -> Any:
    """A functional model used as a layer of another one (class ``Functional``/``Model``)."""
    inner_in = K.Input(shape=(6,))
    inner = K.Model(inner_in, K.layers.Dense(4, activation="relu")(inner_in), name="inner")
    inp = K.Input(shape=(6,), name="x")
    return K.Model(inp, K.layers.Dense(2)(inner(inp)))


def _with_zero_steps(x: np.ndarray) -> np.ndarray:
    """Zero whole time steps (masked by Masking / mask_zero), different ones per sample."""
    x = x.copy()
    x[0, -2:] = 0.0
    x[1, 1] = 0.0
    x[1, -1] = 0.0
    return x


def _padded_ids(shape: tuple[int, int], high: int) -> np.ndarray:
    ids = ints(shape, high, low=1)
    ids[0, -2:] = 0
    ids[1, -1] = 0
    return ids


def registered_classes() -> dict[str, str]:
    """Class names from the tfjs list, split by kind: layer / activation / initializer..."""
    classes = json.loads(CLASSES_JSON.read_text())["classes"]
    kinds: dict[str, str] = {}
    initializers = {
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "LeCunNormal",
        "LeCunUniform",
        "Ones",
        "Orthogonal",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "VarianceScaling",
        "Zeros",
    }
    optimizers = {"Adadelta", "Adagrad", "Adam", "Adamax", "Momentum", "RMSProp", "SGD"}
    constraints = {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}
    regularizers = {"L1L2"}
    for c in classes:
        if c[0].islower():
            kinds[c] = "activation"
        elif c in initializers:
            kinds[c] = "initializer"
        elif c in optimizers:
            kinds[c] = "optimizer"
        elif c in constraints:
            kinds[c] = "constraint"
        elif c in regularizers:
            kinds[c] = "regularizer"
        else:
            kinds[c] = "layer"
    # "Identity" is both an initializer and a layer in tfjs's map; the layer case covers it
    # and the initializer gets its own case below.
    return kinds


def keras_activation_names() -> list[str]:
    """Every activation name either Keras accepts as a string (sorted, deduplicated)."""
    import keras
    import tf_keras

    names = set()
    for mod in (tf_keras.activations, keras.activations):
        for n in dir(mod):
            if n.startswith("_") or n in ("get", "serialize", "deserialize"):
                continue
            fn = getattr(mod, n)
            if not callable(fn) or isinstance(fn, type):
                continue
            try:
                if mod.get(n) is not None:
                    names.add(n)
            except Exception:  # noqa: BLE001 - not an activation of this Keras
                continue
    return sorted(names)


def _initializer_case(cls: str) -> Build:
    def build(K: Any) -> Any:
        init = {
            "Constant": lambda: K.initializers.Constant(0.3),
            "Identity": lambda: K.initializers.Identity(),
        }.get(cls, lambda: getattr(K.initializers, cls)())()
        return _functional(K, (6,), K.layers.Dense(6, kernel_initializer=init, bias_initializer="ones"))

    return build


def _constraint_case(cls: str) -> Build:
    def build(K: Any) -> Any:
        c = getattr(K.constraints, cls)()
        return _functional(K, (6,), K.layers.Dense(4, kernel_constraint=c, bias_constraint=c))

    return build


def _compiled_case(cls: str) -> Build:
    names = {"Momentum": "SGD", "RMSProp": "RMSprop"}

    def build(K: Any) -> Any:
        model = _functional(K, (6,), K.layers.Dense(3, activation="softmax"))
        opt_cls = getattr(K.optimizers, names.get(cls, cls))
        opt = opt_cls(momentum=0.9) if cls == "Momentum" else opt_cls()
        model.compile(optimizer=opt, loss="categorical_crossentropy")
        return model

    return build


# --- variants users hit ------------------------------------------------------------


def _rnn_variants() -> dict[str, tuple[Build, InputsFn]]:
    seq = (5, 4)
    out: dict[str, tuple[Build, InputsFn]] = {}
    for cls in ("SimpleRNN", "GRU", "LSTM"):
        extra: list[tuple[str, dict[str, Any]]] = [
            ("return_sequences", {"return_sequences": True}),
            ("go_backwards", {"go_backwards": True}),
            ("unroll", {"unroll": True}),
            ("no_bias", {"use_bias": False}),
        ]
        if cls == "GRU":
            extra += [
                ("reset_after_true", {"reset_after": True}),
                ("reset_after_false", {"reset_after": False}),
            ]
        for label, kw in extra:
            out[f"rnn/{cls}_{label}"] = (
                (lambda c, k: lambda K: _functional(K, seq, getattr(K.layers, c)(3, **k)))(cls, kw),
                _f(*seq),
            )
        out[f"rnn/{cls}_return_state"] = ((lambda c: lambda K: _return_state(K, c))(cls), _f(*seq))
        out[f"rnn/{cls}_stacked"] = (
            (
                lambda c: (
                    lambda K: _functional(
                        K, seq, getattr(K.layers, c)(3, return_sequences=True), getattr(K.layers, c)(2)
                    )
                )
            )(cls),
            _f(*seq),
        )
        out[f"mask/Embedding_mask_zero_{cls}"] = (
            (
                lambda c: (
                    lambda K: _functional(
                        K,
                        (5,),
                        K.layers.Embedding(9, 3, mask_zero=True),
                        getattr(K.layers, c)(3),
                        dtype="int32",
                    )
                )
            )(cls),
            lambda: [_padded_ids((BATCH, 5), 9)],
        )
        out[f"mask/Masking_{cls}_return_sequences"] = (
            (
                lambda c: (
                    lambda K: _functional(
                        K, seq, K.layers.Masking(0.0), getattr(K.layers, c)(3, return_sequences=True)
                    )
                )
            )(cls),
            lambda: [_with_zero_steps(rand((BATCH, *seq)))],
        )
    for mode in ("concat", "sum", "ave", "mul"):
        out[f"bidi/LSTM_{mode}"] = (
            (lambda m: lambda K: _functional(K, seq, K.layers.Bidirectional(K.layers.LSTM(3), merge_mode=m)))(
                mode
            ),
            _f(*seq),
        )
    out["bidi/GRU_return_sequences"] = (
        lambda K: _functional(
            K, seq, K.layers.Bidirectional(K.layers.GRU(3, return_sequences=True, reset_after=False))
        ),
        _f(*seq),
    )
    out["mask/Masking_Bidirectional_LSTM"] = (
        lambda K: _functional(K, seq, K.layers.Masking(0.0), K.layers.Bidirectional(K.layers.LSTM(3))),
        lambda: [_with_zero_steps(rand((BATCH, *seq)))],
    )
    out["mask/Embedding_mask_zero_Bidirectional_LSTM"] = (
        lambda K: _functional(
            K,
            (5,),
            K.layers.Embedding(9, 3, mask_zero=True),
            K.layers.Bidirectional(K.layers.LSTM(3, return_sequences=True)),
            dtype="int32",
        ),
        lambda: [_padded_ids((BATCH, 5), 9)],
    )
    out["wrap/TimeDistributed_Conv2D"] = (
        lambda K: _functional(K, (3, 5, 5, 2), K.layers.TimeDistributed(K.layers.Conv2D(2, 3))),
        _f(3, 5, 5, 2),
    )
    return out


def _return_state(K: Any, cls: str) -> Any:
    inp = K.Input(shape=(5, 4), name="x")
    outs = getattr(K.layers, cls)(3, return_state=True, return_sequences=True)(inp)
    return K.Model(inp, list(outs))


def _conv_variants() -> dict[str, tuple[Build, InputsFn]]:
    img, seq = (7, 7, 3), (8, 3)
    specs: list[tuple[str, str, tuple[int, ...], tuple[Any, ...], dict[str, Any]]] = [
        ("conv/Conv2D_no_bias", "Conv2D", img, (4, 3), {"use_bias": False}),
        ("conv/Conv2D_same_strides2", "Conv2D", img, (4, 3), {"padding": "same", "strides": 2}),
        ("conv/Conv2D_dilation2", "Conv2D", img, (4, 3), {"dilation_rate": 2}),
        ("conv/Conv2D_channels_first", "Conv2D", img, (4, 3), {"data_format": "channels_first"}),
        ("conv/Conv2D_relu6", "Conv2D", img, (4, 3), {"activation": "relu6", "padding": "same"}),
        ("conv/Conv1D_causal_dilation2", "Conv1D", seq, (4, 3), {"padding": "causal", "dilation_rate": 2}),
        ("conv/Conv1D_same_strides2", "Conv1D", seq, (4, 3), {"padding": "same", "strides": 2}),
        (
            "conv/DepthwiseConv2D_multiplier2_same",
            "DepthwiseConv2D",
            img,
            (3,),
            {"depth_multiplier": 2, "padding": "same"},
        ),
        (
            "conv/DepthwiseConv2D_strides2_no_bias",
            "DepthwiseConv2D",
            img,
            (3,),
            {"strides": 2, "use_bias": False},
        ),
        (
            "conv/SeparableConv2D_multiplier2_same",
            "SeparableConv2D",
            img,
            (4, 3),
            {"depth_multiplier": 2, "padding": "same"},
        ),
        (
            "conv/Conv2DTranspose_same_strides2",
            "Conv2DTranspose",
            img,
            (4, 3),
            {"padding": "same", "strides": 2},
        ),
        ("conv/MaxPooling2D_same_strides1", "MaxPooling2D", img, (3,), {"strides": 1, "padding": "same"}),
        ("conv/AveragePooling2D_same", "AveragePooling2D", img, (3,), {"strides": 2, "padding": "same"}),
        ("conv/MaxPooling2D_channels_first", "MaxPooling2D", img, (2,), {"data_format": "channels_first"}),
        (
            "conv/GlobalAveragePooling2D_channels_first",
            "GlobalAveragePooling2D",
            img,
            (),
            {"data_format": "channels_first"},
        ),
        ("conv/UpSampling2D_bilinear", "UpSampling2D", img, (2,), {"interpolation": "bilinear"}),
        ("conv/Resizing_nearest", "Resizing", img, (4, 4), {"interpolation": "nearest"}),
    ]
    out: dict[str, tuple[Build, InputsFn]] = {}
    for cid, cls, shape, args, kw in specs:
        out[cid] = (
            (lambda c, s, a, k: lambda K: _functional(K, s, getattr(K.layers, c)(*a, **k)))(
                cls, shape, args, kw
            ),
            _f(*shape),
        )
    out["dense/no_bias"] = (lambda K: _functional(K, (6,), K.layers.Dense(4, use_bias=False)), _f(6))
    out["dense/rank3_input"] = (
        lambda K: _functional(K, (5, 4), K.layers.Dense(3, activation="relu")),
        _f(5, 4),
    )
    out["reg/L1L2_all"] = (
        lambda K: _functional(
            K,
            (6,),
            K.layers.Dense(
                4,
                kernel_regularizer=K.regularizers.L1L2(0.01, 0.02),
                bias_regularizer=K.regularizers.L2(0.01),
                activity_regularizer=K.regularizers.L1(0.01),
            ),
        ),
        _f(6),
    )
    out["norm/BatchNormalization_axis1_no_center"] = (
        lambda K: _functional(K, (4, 5), K.layers.BatchNormalization(axis=1, center=False, scale=True)),
        _f(4, 5),
    )
    out["norm/LayerNormalization_no_scale"] = (
        lambda K: _functional(K, (5, 4), K.layers.LayerNormalization(scale=False, epsilon=1e-3)),
        _f(5, 4),
    )
    out["norm/UnitNormalization"] = (lambda K: _functional(K, (6,), K.layers.UnitNormalization()), _f(6))
    out["norm/GroupNormalization"] = (
        lambda K: _functional(K, img, K.layers.GroupNormalization(groups=3)),
        _f(*img),
    )
    out["attn/Attention"] = (lambda K: _self_attention(K, "Attention"), _f(5, 4))
    out["attn/AdditiveAttention"] = (lambda K: _self_attention(K, "AdditiveAttention"), _f(5, 4))
    out["attn/MultiHeadAttention"] = (lambda K: _mha(K), _f(5, 4))
    out["seq/Sequential_without_InputLayer"] = (_sequential_no_input, _f(6))
    out["merge/Subtract"] = (lambda K: _two_branch(K, K.layers.Subtract()), _f(6))
    return out


def _self_attention(K: Any, cls: str) -> Any:
    inp = K.Input(shape=(5, 4), name="x")
    return K.Model(inp, getattr(K.layers, cls)()([inp, inp]))


def _mha(K: Any) -> Any:
    inp = K.Input(shape=(5, 4), name="x")
    return K.Model(inp, K.layers.MultiHeadAttention(num_heads=2, key_dim=3)(inp, inp))


def _sequential_no_input(K: Any) -> Any:
    """Sequential saved without an InputLayer: Keras 2 puts the shape on the first layer,
    Keras 3 builds from a shape (``model.build``)."""
    if K.__name__.startswith("tf_keras"):
        return K.Sequential([K.layers.Dense(4, activation="relu", input_shape=(6,)), K.layers.Dense(2)])
    model = K.Sequential([K.layers.Dense(4, activation="relu"), K.layers.Dense(2)])
    model.build((None, 6))
    return model


def keras_cases() -> list[Case]:
    """Every Keras case, sorted by id."""
    cases: dict[str, Case] = {}
    kinds = registered_classes()
    for cls, kind in sorted(kinds.items()):
        if kind == "layer":
            spec = _layer_case(cls)
            if spec is None:
                raise AssertionError(
                    f"no corpus builder for tfjs layer class {cls}: add one to coverage_corpus"
                )
            cases[f"layer/{cls}"] = Case(f"layer/{cls}", spec[1], build=spec[0])
        elif kind == "initializer":
            cases[f"init/{cls}"] = Case(f"init/{cls}", _f(6), build=_initializer_case(cls))
        elif kind == "constraint":
            cases[f"constraint/{cls}"] = Case(f"constraint/{cls}", _f(6), build=_constraint_case(cls))
        elif kind == "optimizer":
            cases[f"compiled/{cls}"] = Case(f"compiled/{cls}", _f(6), build=_compiled_case(cls))
        # "regularizer" (L1L2) is covered by reg/L1L2_all; "activation" by act/* below.
    cases["init/Identity"] = Case("init/Identity", _f(6), build=_initializer_case("Identity"))
    for name in keras_activation_names():
        cid = f"act/{name}"
        cases[cid] = Case(
            cid,
            _f(6),
            build=(lambda n: lambda K: _functional(K, (6,), K.layers.Dense(5, activation=n)))(name),
        )
    for table in (_rnn_variants(), _conv_variants()):
        for cid, (build, inputs) in table.items():
            cases[cid] = Case(cid, inputs, build=build)
    cases["model/subclassed"] = Case("model/subclassed", _f(6), build=subclassed_model)
    cases["h5/old_weight_names"] = Case(
        "h5/old_weight_names",
        _f(6, 6, 3),
        build=lambda K: _functional(
            K,
            (6, 6, 3),
            K.layers.Conv2D(2, 3, name="conv2d_1"),
            K.layers.Flatten(),
            K.layers.Dense(2, name="dense_1"),
        ),
        note="Keras 2 .h5 rewritten so stored weight names carry a uniquifying suffix (conv2d_1_1/kernel:0)",
    )
    return [cases[k] for k in sorted(cases)]


def suffix_h5_weight_names(path: str) -> None:
    """Rewrite a tf_keras .h5 the way old Keras wrote it: ``<layer>/<layer>_1/kernel:0``.

    Old files carry weight names whose scope got a uniquifying suffix; Keras loads them by
    position, tfjs by name. Only layers whose name ends in ``_<digit>`` are renamed.
    """
    with h5py.File(path, "r+") as f:
        weights = f["model_weights"]
        for layer_name in list(weights.keys()):
            group = weights[layer_name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
            if not names or not layer_name[-1].isdigit():
                continue
            new_names = []
            for n in names:
                scope, rest = n.split("/", 1)
                new = f"{scope}_1/{rest}" if scope == layer_name else n
                if new != n:
                    group.move(n, new)
                new_names.append(new)
            group.attrs["weight_names"] = np.array([n.encode() for n in new_names])


# --- graph-side cases (SavedModel -> graph) ----------------------------------------
# Each tf.Module computes a dtype-generic function, so the same function run eagerly in
# float64 gives the case's independent bound.


def _while_fn(x: Any) -> dict[str, Any]:
    import tensorflow as tf

    _, y = tf.while_loop(
        lambda i, y: i < 4, lambda i, y: (i + 1, tf.tanh(y * 1.5 + 0.1)), (tf.constant(0), x)
    )
    return {"y": y}


def _while_data_dependent_fn(x: Any) -> dict[str, Any]:
    import tensorflow as tf

    n = tf.cast(tf.reduce_max(tf.abs(x)) * 3.0, tf.int32) + 1
    _, acc = tf.while_loop(
        lambda i, acc: i < n,
        lambda i, acc: (i + 1, acc + tf.cast(i, x.dtype) * x),
        (tf.constant(0), tf.zeros_like(x)),
    )
    return {"acc": acc}


def _cond_fn(x: Any) -> dict[str, Any]:
    import tensorflow as tf

    return {"y": tf.cond(tf.reduce_sum(x) > 0.0, lambda: tf.sigmoid(x) * 2.0, lambda: tf.square(x) - 1.0)}


def _module_saver(fn: Callable[[Any], dict[str, Any]]) -> Callable[[str], None]:
    def save(path: str) -> None:
        import tensorflow as tf

        class M(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
            def __call__(self, x):
                return fn(x)

        m = M()
        tf.saved_model.save(m, path, signatures={"serving_default": m.__call__})

    return save


def _module_f64(fn: Callable[[Any], dict[str, Any]]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    def run(inputs: list[np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        res = fn(tf.constant(inputs[0].astype(np.float64)))
        return [res[k].numpy() for k in sorted(res)]

    return run


def _sm_hash_table(path: str) -> None:
    import tensorflow as tf

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            init = tf.lookup.KeyValueTensorInitializer(
                tf.constant(["a", "b", "c", "d"]), tf.constant([3, 1, 4, 1], tf.int64)
            )
            self.table = tf.lookup.StaticHashTable(init, default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
        def __call__(self, words):
            return {"ids": tf.cast(self.table.lookup(words), tf.int32)}

    m = Lookup()
    tf.saved_model.save(m, path, signatures={"serving_default": m.__call__})


def _k3_export(model: Any, path: str) -> None:
    model.export(path, format="tf_saved_model", verbose=False)


def _sm_k3_functional(path: str) -> None:
    import keras

    keras.utils.set_random_seed(SEED)
    inp = keras.Input(shape=(5, 4), name="x")
    x = keras.layers.LSTM(3, return_sequences=True)(inp)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dense(2, activation="gelu")(keras.layers.GlobalAveragePooling1D()(x))
    _k3_export(keras.Model(inp, x), path)


def _sm_k3_subclassed(path: str) -> None:
    import keras

    _k3_export(subclassed_model(keras), path)


def subclassed_model(keras: Any) -> Any:
    """A subclassed model (no config: its saved file needs the Python class)."""

    class Tiny(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.d1 = keras.layers.Dense(4, activation="relu")
            self.d2 = keras.layers.Dense(2)

        def call(self, x):
            return self.d2(self.d1(x) + x[:, :4])

    model = Tiny()
    model(rand((1, 6)))
    return model


def graph_cases() -> list[Case]:
    return [
        Case(
            "graph/tf_while_loop", _f(3), saved_model=_module_saver(_while_fn), float64=_module_f64(_while_fn)
        ),
        Case(
            "graph/tf_while_loop_data_dependent",
            _f(3),
            saved_model=_module_saver(_while_data_dependent_fn),
            float64=_module_f64(_while_data_dependent_fn),
        ),
        Case("graph/tf_cond", _f(3), saved_model=_module_saver(_cond_fn), float64=_module_f64(_cond_fn)),
        Case(
            "graph/hash_table",
            lambda: [np.array([b"b", b"zz", b"a", b"d"], dtype=object)],
            saved_model=_sm_hash_table,
        ),
        Case("graph/keras3_functional_export", _f(5, 4), saved_model=_sm_k3_functional),
        Case("graph/keras3_subclassed_export", _f(6), saved_model=_sm_k3_subclassed),
    ]


def all_cases() -> list[Case]:
    return keras_cases() + graph_cases()


# --- building and reference predictions --------------------------------------------


def keras_module(flavor: str) -> Any:
    if flavor == "k2":
        import tf_keras

        return tf_keras
    import keras

    return keras


def seed(flavor: str) -> None:
    import tensorflow as tf

    np.random.seed(SEED)
    tf.random.set_seed(SEED)
    if flavor == "k3":
        import keras

        keras.utils.set_random_seed(SEED)


def perturb_weights(model: Any) -> None:
    """Give every weight non-trivial values (zero biases, unit BN stats hide bugs)."""
    rng = np.random.default_rng(SEED)
    new = []
    for w in model.get_weights():
        w = np.asarray(w)
        if w.dtype.kind == "f":
            delta = rng.uniform(-0.3, 0.3, w.shape).astype(w.dtype)
            w = w + delta
            if w.ndim == 1 and np.all(w > -0.3):  # variances/scales stay positive
                w = np.abs(w) + 0.1
        new.append(w)
    model.set_weights(new)


def apply_constraints(model: Any) -> None:
    """Project weights onto their layer's constraints, as every training step leaves them.

    Keras applies constraints only after optimizer updates; tfjs applies them when it loads
    weights. A trained model satisfies its constraints, so a perturbed one must too.
    """
    for layer in model.layers:
        for name in ("kernel", "bias"):
            constraint = getattr(layer, f"{name}_constraint", None)
            var = getattr(layer, name, None)
            if constraint is not None and var is not None:
                var.assign(constraint(var))


def _to_float64(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_float64(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_float64(v) for v in obj]
    return "float64" if obj == "float32" else obj


def predict(model: Any, inputs: list[np.ndarray] | dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs on ``inputs`` (a list in input order, or arrays by input name);
    named outputs (a dict: BERT's ``pooled_output``, ``sequence_output``) sorted by name,
    the order of a graph model's signature."""
    if isinstance(inputs, dict):
        x: Any = inputs
    else:
        x = inputs[0] if len(inputs) == 1 else inputs
    out = model(x, training=False)
    if isinstance(out, dict):
        return [np.asarray(out[k]) for k in sorted(out)]
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in outs]


def widened(inputs: Any) -> Any:
    """Float32 inputs (a list or arrays by name) as float64; integer ones (token ids) as they are."""
    if isinstance(inputs, dict):
        return {k: widened([v])[0] for k, v in inputs.items()}
    return [i.astype(np.float64) if i.dtype == np.float32 else i for i in inputs]


def float64_predictions(K: Any, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
    """The same model rebuilt with every float32 dtype in its config set to float64.

    Returns None when the Keras version cannot build or run the float64 twin; the case then
    has no independent bound beyond the float32 ulp floor.
    """
    try:
        twin = type(model).from_config(_to_float64(model.get_config()))
        twin.set_weights(
            [
                np.asarray(w, dtype=np.float64) if np.asarray(w).dtype == np.float32 else w
                for w in model.get_weights()
            ]
        )
        outs = predict(twin, widened(inputs))
    except Exception:  # noqa: BLE001 - some layers pin float32; no f64 bound then
        return None
    if any(o.dtype != np.float64 for o in outs if o.dtype.kind == "f"):
        return None
    return outs


def save_keras(flavor: str, model: Any, out_dir: str, case_id: str) -> str:
    suffix = FLAVORS[flavor][0]
    path = os.path.join(out_dir, case_id.replace("/", "__") + f"_{flavor}{suffix}")
    model.save(path)
    if case_id == "h5/old_weight_names" and flavor == "k2":
        suffix_h5_weight_names(path)
    return path


def saved_model_predictions(path: str, inputs: list[np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """(input names, outputs in sorted-key order) of the serving signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["serving_default"]
    names = sorted(fn.structured_input_signature[1])
    res = fn(**{n: tf.constant(v) for n, v in zip(names, inputs, strict=False)})
    return names, [res[k].numpy() for k in sorted(res)]
