"""Small, seeded Keras test models (tf_keras = Keras 2, keras = Keras 3).

Each builder saves a model file under ``out_dir`` and returns its path. TensorFlow is
imported lazily inside the builders so that importing this module stays cheap.
"""

from __future__ import annotations

import os

import numpy as np

SEED = 1234


def _seed() -> None:
    import tensorflow as tf

    np.random.seed(SEED)
    tf.random.set_seed(SEED)


def sample_input(shape, seed: int = 7) -> np.ndarray:
    """Deterministic float32 input batch of ``shape``."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _set_bn_stats(model, x) -> None:
    """Give BatchNormalization layers non-trivial statistics so outputs are O(1)."""
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if type(layer).__name__.startswith("BatchNormalization"):
            ws = layer.get_weights()
            ws = [w + rng.uniform(0.1, 0.5, w.shape).astype(np.float32) for w in ws]
            layer.set_weights(ws)


def tfk_mlp(out_dir: str) -> str:
    """tf_keras Sequential MLP; layer names chosen so alphabetical != model order."""
    import tf_keras

    _seed()
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer(input_shape=(6,)),
            tf_keras.layers.Dense(8, activation="relu", name="zeta"),
            tf_keras.layers.Dense(4, activation="tanh", name="alpha"),
            tf_keras.layers.Dense(3, activation="softmax", name="mid"),
        ],
        name="mlp",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    path = os.path.join(out_dir, "mlp.h5")
    model.save(path)
    return path


def tfk_cnn(out_dir: str) -> str:
    """tf_keras functional CNN with BatchNorm, depthwise conv and a skip connection."""
    import tf_keras
    from tf_keras import layers

    _seed()
    inp = layers.Input(shape=(12, 12, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    y = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Add(name="add")([x, y])
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(5, activation="softmax", name="head")(x)
    model = tf_keras.Model(inp, x, name="cnn")
    _set_bn_stats(model, None)
    path = os.path.join(out_dir, "cnn.h5")
    model.save(path)
    return path


def tfk_lstm(out_dir: str) -> str:
    """tf_keras Embedding + LSTM + GRU classifier."""
    import tf_keras
    from tf_keras import layers

    _seed()
    model = tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(7, 4)),
            layers.LSTM(6, return_sequences=True, name="lstm"),
            layers.GRU(5, reset_after=False, name="gru"),  # tfjs lacks reset_after=True
            layers.Dense(2, name="out"),
        ],
        name="rnn",
    )
    path = os.path.join(out_dir, "lstm.h5")
    model.save(path)
    return path


def tfk_weights_only(out_dir: str) -> str:
    """tf_keras weights-only h5 (root ``layer_names`` attribute)."""
    import tf_keras

    _seed()
    model = tf_keras.Sequential(
        [
            tf_keras.layers.InputLayer(input_shape=(3,)),
            tf_keras.layers.Dense(2, name="b_layer"),
            tf_keras.layers.Dense(2, name="a_layer"),
        ]
    )
    path = os.path.join(out_dir, "weights_only.h5")
    model.save_weights(path)
    return path


def _k3_cnn():
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    inp = keras.Input(shape=(10, 10, 3), name="pixels")
    x = layers.Conv2D(6, 3, padding="same", name="c1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("relu", name="act")(x)
    y = layers.DepthwiseConv2D(3, padding="same", name="dw1")(x)
    x = layers.Concatenate(name="cat")([x, y])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.1, name="drop")(x)
    x = layers.Dense(4, activation="softmax", name="d1")(x)
    model = keras.Model(inp, x, name="k3cnn")
    _set_bn_stats(model, None)
    return model


def k3_cnn_h5(out_dir: str) -> str:
    """Keras 3 functional CNN saved with ``model.save('x.h5')``."""
    model = _k3_cnn()
    path = os.path.join(out_dir, "k3cnn.h5")
    model.save(path)
    return path


def k3_cnn_keras(out_dir: str) -> str:
    """Keras 3 functional CNN saved as a ``.keras`` zip."""
    model = _k3_cnn()
    path = os.path.join(out_dir, "k3cnn.keras")
    model.save(path)
    return path


def k3_seq_keras(out_dir: str) -> str:
    """Keras 3 Sequential with Embedding, LSTM, LayerNormalization, Dense (.keras)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=(5,), dtype="int32"),
            layers.Embedding(11, 4, name="emb"),
            layers.LSTM(3, return_sequences=True, name="rnn"),
            layers.GRU(3, reset_after=False, name="gru"),
            layers.LayerNormalization(name="ln"),
            layers.Dense(2, name="dense"),
            layers.Dense(2, name="dense_out"),
        ],
        name="k3seq",
    )
    path = os.path.join(out_dir, "k3seq.keras")
    model.save(path)
    return path


def k3_zoo_keras(out_dir: str) -> str:
    """Keras 3 model with many layer kinds: wrappers, separable/transposed convs, RNNs,
    LeakyReLU (renamed argument), PReLU, pooling/padding/reshape, merge layers."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    inp = keras.Input(shape=(8, 8, 3), name="img")
    x = layers.SeparableConv2D(4, 3, padding="same", name="sep")(inp)
    x = layers.LeakyReLU(negative_slope=0.2, name="leaky")(x)
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="deconv")(x)
    x = layers.PReLU(name="prelu")(x)
    x = layers.ZeroPadding2D(1, name="pad")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.UpSampling2D(2, name="up")(x)
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = layers.Reshape((4, 1), name="resh")(x)
    x = layers.Conv1D(3, 2, padding="same", activation="elu", name="c1d")(x)
    x = layers.Bidirectional(layers.LSTM(2, return_sequences=True, name="bl"), name="bidi")(x)
    x = layers.TimeDistributed(layers.Dense(2, name="td_d"), name="td")(x)
    x = layers.SimpleRNN(3, name="srnn")(x)
    y = layers.Dense(3, activation="sigmoid", name="gate")(x)
    x = layers.Multiply(name="mul")([x, y])
    x = layers.Softmax(name="sm")(x)
    model = keras.Model(inp, x, name="zoo")
    path = os.path.join(out_dir, "k3zoo.keras")
    model.save(path)
    return path


def tfk_nested(out_dir: str) -> str:
    """tf_keras functional model containing a Sequential sub-model."""
    import tf_keras

    _seed()
    sub = tf_keras.Sequential(
        [tf_keras.layers.Dense(4, activation="relu", name="inner1"), tf_keras.layers.Dense(3, name="inner2")],
        name="sub",
    )
    inp = tf_keras.Input((5,), name="x")
    out = tf_keras.layers.Dense(2, name="outer")(sub(inp))
    model = tf_keras.Model(inp, out, name="nest")
    path = os.path.join(out_dir, "nested.h5")
    model.save(path)
    return path


def k3_nested_keras(out_dir: str) -> str:
    """Keras 3 model nesting a Sequential and a Functional sub-model (.keras)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    seq = keras.Sequential(
        [keras.Input((5,)), layers.Dense(4, activation="relu", name="s1"), layers.Dense(3, name="s2")],
        name="seq",
    )
    f_in = keras.Input((3,), name="f_in")
    func = keras.Model(f_in, layers.Dense(3, activation="tanh", name="f1")(f_in), name="func")
    inp = keras.Input((5,), name="x")
    h = seq(inp)
    out = layers.Dense(2, name="head")(layers.Add(name="add")([func(h), h]))
    model = keras.Model(inp, out, name="k3nest")
    path = os.path.join(out_dir, "k3nested.keras")
    model.save(path)
    return path


def k3_multi_keras(out_dir: str) -> str:
    """Keras 3 model with two inputs, two outputs and a layer shared by both inputs."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = layers.Dense(3, name="shared")
    ha, hb = shared(a), shared(b)
    o1 = layers.Dense(2, name="o1")(layers.Concatenate(name="cat")([ha, hb]))
    o2 = layers.Maximum(name="mx")([ha, hb])
    model = keras.Model([a, b], [o1, o2], name="multi")
    path = os.path.join(out_dir, "k3multi.keras")
    model.save(path)
    return path


def mobilenet_v2_h5(out_dir: str, alpha: float = 1.0, size: int = 224, logits: bool = False) -> str:
    """tf_keras MobileNetV2(weights=None) saved as h5 (benchmark and slow tests)."""
    import tf_keras

    _seed()
    model = tf_keras.applications.MobileNetV2(
        weights=None,
        alpha=alpha,
        input_shape=(size, size, 3),
        classifier_activation=None if logits else "softmax",
    )
    _set_bn_stats(model, None)
    path = os.path.join(out_dir, "mobilenet_v2.h5")
    model.save(path)
    return path


def k3_mobilenet_v2_keras(out_dir: str, alpha: float = 0.35, size: int = 96) -> str:
    """Keras 3 MobileNetV2(weights=None) with logits outputs, as ``.keras``."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.applications.MobileNetV2(
        weights=None, alpha=alpha, input_shape=(size, size, 3), classifier_activation=None
    )
    _set_bn_stats(model, None)
    path = os.path.join(out_dir, "k3_mobilenet_v2.keras")
    model.save(path)
    return path


BUILDERS = {
    "mlp": tfk_mlp,
    "cnn": tfk_cnn,
    "lstm": tfk_lstm,
    "weights_only": tfk_weights_only,
    "k3_cnn_h5": k3_cnn_h5,
    "k3_cnn_keras": k3_cnn_keras,
    "k3_seq_keras": k3_seq_keras,
    "k3_zoo_keras": k3_zoo_keras,
    "nested": tfk_nested,
    "k3_nested_keras": k3_nested_keras,
    "k3_multi_keras": k3_multi_keras,
}


def build_all(out_dir: str) -> dict:
    """Build every small test model into ``out_dir``; return {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    return {name: fn(out_dir) for name, fn in sorted(BUILDERS.items())}


def cached_models(base_dir: str) -> dict:
    """``build_all`` once per directory: a marker file makes later calls free.

    Test modules share one pytest session temp dir, so the TensorFlow model building
    (the slow part) happens once per session however many modules ask for it.
    """
    out_dir = os.path.join(base_dir, "keras_models")
    marker = os.path.join(out_dir, ".complete")
    if not os.path.exists(marker):
        paths = build_all(out_dir)
        with open(marker, "w") as f:
            f.write("\n".join(f"{k}={v}" for k, v in sorted(paths.items())))
        return paths
    with open(marker) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines())


def load_original(path: str):
    """The source model in the Keras that wrote it (Keras 3 files -> ``keras``)."""
    import h5py

    keras3 = path.endswith(".keras")
    if not keras3:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"")
            version = version.decode() if isinstance(version, bytes) else str(version)
            keras3 = version.startswith("3.")
    if keras3:
        import keras

        return keras.models.load_model(path, compile=False)
    import tf_keras

    return tf_keras.models.load_model(path, compile=False)


# name -> input builder for predictions (batch of 2).
INPUTS = {
    "mlp": lambda: sample_input((2, 6)),
    "cnn": lambda: sample_input((2, 12, 12, 3)),
    "lstm": lambda: sample_input((2, 7, 4)),
    "k3_cnn_h5": lambda: sample_input((2, 10, 10, 3)),
    "k3_cnn_keras": lambda: sample_input((2, 10, 10, 3)),
    "k3_seq_keras": lambda: np.random.default_rng(3).integers(0, 11, (2, 5)).astype(np.int32),
    "k3_zoo_keras": lambda: sample_input((2, 8, 8, 3)),
    "nested": lambda: sample_input((2, 5)),
    "k3_nested_keras": lambda: sample_input((2, 5)),
    "k3_multi_keras": lambda: [sample_input((2, 4), 1), sample_input((2, 4), 2)],
}


def as_list(value) -> list:
    """Model inputs/outputs as a list (single arrays become one-element lists)."""
    return [np.asarray(v) for v in value] if isinstance(value, (list, tuple)) else [np.asarray(value)]
