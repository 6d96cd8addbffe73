"""Small, seeded TensorFlow models for the graph-model tests (built on demand).

Each builder writes its model under ``root`` and returns (path, sample inputs); the
test fixtures cache them per session.  Models are tiny except MobileNetV2.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Same as the converter: no ISA-dependent oneDNN kernels (reproducible folding).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

Inputs = dict[str, np.ndarray]


def _tf():
    import tensorflow as tf

    return tf


def _keras2():
    import tf_keras

    return tf_keras


def _seed(seed: int = 1234) -> None:
    tf = _tf()
    tf.keras.utils.set_random_seed(seed) if hasattr(tf.keras.utils, "set_random_seed") else None
    _keras2().utils.set_random_seed(seed)
    np.random.seed(seed)


def _rand(shape, seed=7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _save_keras2_savedmodel(model, path: str) -> None:
    model.save(path, save_format="tf", include_optimizer=False)


def _set_bn_stats(model, x: np.ndarray) -> None:
    """Give BatchNorm layers moving stats from one pass of data (outputs stay O(1))."""
    keras = _keras2()
    tf = _tf()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            sub = keras.Model(model.inputs, layer.input)
            act = sub(x, training=False).numpy()
            axes = tuple(range(act.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights(
                [
                    (1.0 + 0.1 * rng.standard_normal(gamma.shape)).astype(np.float32),
                    (0.1 * rng.standard_normal(beta.shape)).astype(np.float32),
                    act.mean(axis=axes).astype(np.float32),
                    act.var(axis=axes).astype(np.float32),
                ]
            )
    del tf


def _bias():
    return _keras2().initializers.RandomNormal(stddev=0.5, seed=5)


def mlp(root: str) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", bias_initializer=_bias(), name="d1")(inp)
    out = keras.layers.Dense(4, activation="softmax", bias_initializer=_bias(), name="d2")(h)
    model = keras.Model(inp, out)
    path = os.path.join(root, "mlp_sm")
    _save_keras2_savedmodel(model, path)
    h5 = os.path.join(root, "mlp.h5")
    model.save(h5)
    return path, {"x": _rand((3, 8))}


def cnn_bn(root: str) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    inp = keras.Input((16, 16, 3), name="img")
    h = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(name="r1")(h)
    h = keras.layers.Conv2D(8, 3, strides=2, activation="relu", bias_initializer=_bias(), name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(5, bias_initializer=_bias(), name="logits")(h)
    model = keras.Model(inp, out)
    x = _rand((2, 16, 16, 3))
    _set_bn_stats(model, x)
    path = os.path.join(root, "cnn_sm")
    _save_keras2_savedmodel(model, path)
    model.save(os.path.join(root, "cnn.h5"))
    return path, {"img": x}


def depthwise(root: str) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    inp = keras.Input((12, 12, 4), name="img")
    h = keras.layers.DepthwiseConv2D(3, padding="same", bias_initializer=_bias(), name="dw1")(inp)
    h = keras.layers.ReLU(6.0, name="relu6")(h)
    h = keras.layers.DepthwiseConv2D(
        3, padding="same", activation="elu", bias_initializer=_bias(), name="dw2"
    )(h)
    out = keras.layers.Flatten(name="flat")(h)
    model = keras.Model(inp, out)
    path = os.path.join(root, "dw_sm")
    _save_keras2_savedmodel(model, path)
    return path, {"img": _rand((2, 12, 12, 4))}


def lstm(root: str) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    inp = keras.Input((5, 3), name="seq")
    h = keras.layers.LSTM(6, bias_initializer=_bias(), name="lstm")(inp)
    out = keras.layers.Dense(2, bias_initializer=_bias(), name="head")(h)
    model = keras.Model(inp, out)
    path = os.path.join(root, "lstm_sm")
    _save_keras2_savedmodel(model, path)
    return path, {"seq": _rand((2, 5, 3))}


def prelu(root: str) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, bias_initializer=_bias(), name="d1")(inp)
    h = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), name="pr")(h)
    out = keras.layers.Dense(3, bias_initializer=_bias(), name="d2")(h)
    model = keras.Model(inp, out)
    path = os.path.join(root, "prelu_sm")
    _save_keras2_savedmodel(model, path)
    return path, {"x": _rand((4, 6))}


def two_outputs(root: str) -> tuple[str, Inputs]:
    """A tf.Module whose two outputs have the same dtype and shape (reference bug)."""
    tf = _tf()
    _seed()

    class TwoHeads(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(_rand((2, 3), seed=3))
            self.b = tf.Variable(_rand((3,), seed=4))

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x):
            y = tf.matmul(x, self.w) + self.b
            return {"b_out": tf.nn.relu(y), "a_out": y * 2.0}

    module = TwoHeads()
    path = os.path.join(root, "two_sm")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path, {"x": _rand((3, 2), seed=5)}


def hash_table(root: str) -> tuple[str, Inputs]:
    tf = _tf()

    class Lookup(tf.Module):
        def __init__(self):
            super().__init__()
            init = tf.lookup.KeyValueTensorInitializer(
                tf.constant(["apple", "banana", "cherry"]), tf.constant([10, 20, 30], tf.int64)
            )
            self.table = tf.lookup.StaticHashTable(init, default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
        def __call__(self, words):
            return {"ids": tf.cast(self.table.lookup(words), tf.int32) + 1}

    module = Lookup()
    path = os.path.join(root, "table_sm")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path, {"words": np.array([b"banana", b"kiwi", b"apple"], dtype=object)}


def unsupported(root: str) -> tuple[str, Inputs]:
    """Uses MatrixDeterminant and Lgamma, which tfjs cannot run."""
    tf = _tf()

    class Bad(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2, 2], tf.float32, name="m")])
        def __call__(self, m):
            return {"out": tf.math.lgamma(tf.abs(tf.linalg.det(m)) + 1.0)}

    module = Bad()
    path = os.path.join(root, "bad_sm")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    return path, {"m": _rand((2, 2, 2))}


def frozen_graph(root: str) -> tuple[str, Inputs]:
    """A binary GraphDef with a Conv2D+BiasAdd+Relu and a MatMul; output node 'output'."""
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    w = tf.Variable(_rand((3, 3, 2, 4), seed=11))
    b = tf.Variable(_rand((4,), seed=12))
    m = tf.Variable(_rand((4, 3), seed=13))

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32, name="input")])
    def f(x):
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        h = tf.reduce_mean(h, axis=[1, 2])
        return tf.identity(tf.matmul(h, m), name="output")

    frozen = convert_variables_to_constants_v2(f.get_concrete_function())
    path = os.path.join(root, "frozen.pb")
    with open(path, "wb") as fh:
        fh.write(frozen.graph.as_graph_def().SerializeToString())
    return path, {"input": _rand((2, 6, 6, 2), seed=14)}


def hub_module(root: str) -> tuple[str, Inputs]:
    """A TF2 SavedModel used as a hub module: its signature is named 'default'."""
    tf = _tf()

    class Embed(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(_rand((4, 3), seed=21))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            return {"embedding": tf.tanh(tf.matmul(x, self.w))}

    module = Embed()
    path = os.path.join(root, "hub_module")
    tf.saved_model.save(module, path, signatures={"default": module.__call__})
    return path, {"x": _rand((2, 4), seed=22)}


def tf1_hub_module(root: str) -> tuple[str, Inputs]:
    """A TF1 Hub-format module: TF1 SavedModel with empty tags plus ``tfhub_module.pb``."""
    tf = _tf()
    path = os.path.join(root, "tf1_hub")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        w = tf.compat.v1.get_variable("w", initializer=_rand((3, 2), seed=41))
        b = tf.compat.v1.get_variable("b", initializer=_rand((2,), seed=42))
        y = tf.nn.relu(tf.matmul(x, w) + b, name="y")
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(path)
            sig = tf.compat.v1.saved_model.predict_signature_def({"default": x}, {"default": y})
            builder.add_meta_graph_and_variables(sess, [], signature_def_map={"default": sig})
            builder.save()
    # ModuleDef{format: 1}: the file's presence marks the TF1 Hub format.
    with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
        f.write(b"\x08\x01")
    return path, {"default": _rand((4, 3), seed=43)}


def keras3_model(root: str) -> tuple[str, Inputs]:
    """A Keras 3 ``.keras`` file (the reference cannot convert these to graph models)."""
    import keras

    keras.utils.set_random_seed(99)
    inp = keras.Input((10,), name="features")
    h = keras.layers.Dense(12, activation="relu", name="hidden")(inp)
    out = keras.layers.Dense(3, activation="sigmoid", name="probs")(h)
    model = keras.Model(inp, out)
    path = os.path.join(root, "k3.keras")
    model.save(path)
    return path, {"features": _rand((2, 10), seed=23)}


def mobilenet_v2(root: str, size: int = 96, classes: int = 10) -> tuple[str, Inputs]:
    keras = _keras2()
    _seed()
    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None, classes=classes)
    x = _rand((2, size, size, 3), seed=31)
    _set_bn_stats(model, x)
    path = os.path.join(root, "mnv2_sm")
    _save_keras2_savedmodel(model, path)
    model.save(os.path.join(root, "mnv2.h5"))
    return path, {model.inputs[0].name.split(":")[0]: x}


def predict_saved_model(
    path: str, inputs: Inputs, signature: str = "serving_default", tags=None
) -> dict[str, np.ndarray]:
    """TensorFlow's own outputs for ``inputs`` (the ground truth of the tests)."""
    tf = _tf()
    model = tf.saved_model.load(path, tags=tags)
    func = model.signatures[signature]
    feed = {k: tf.constant(v) for k, v in inputs.items()}
    return {k: v.numpy() for k, v in func(**feed).items()}
