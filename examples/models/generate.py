"""Regenerate the small example source models in this directory (seeded).

    .venv/bin/python examples/models/generate.py

Writes:
  mlp_keras2.h5         tf_keras Sequential: Dense(8, relu, input 4) -> Dense(3, softmax)
  cnn_keras3.keras      Keras 3 CNN: 8x8x1 -> Conv2D(4, 3, relu) -> MaxPool -> Flatten -> Dense(2, softmax)
  module_saved_model/   tf.Module, signature "serving_default": x[None, 4] -> {"scores", "embedding"}
  cnn_frozen.pb         frozen GraphDef of a tf_keras CNN; input "x", output node "Identity"

Weights come from fixed seeds, so every run computes the same numbers; the files
are committed so builds never need TensorFlow's random state.
"""

from __future__ import annotations

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# The output node of cnn_frozen.pb, used by //examples:cnn_frozen_graph.
FROZEN_OUTPUT_NODE = "Identity"


def _seeded_values(shape, seed: int) -> np.ndarray:
    """Small, reproducible float32 weights independent of framework initializers."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def _set_weights(model, seed: int) -> None:
    model.set_weights([_seeded_values(w.shape, seed + i) for i, w in enumerate(model.get_weights())])


def mlp_keras2(path: str) -> None:
    import tf_keras

    model = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(8, activation="relu", input_shape=(4,), name="hidden"),
            tf_keras.layers.Dense(3, activation="softmax", name="probs"),
        ],
        name="mlp",
    )
    _set_weights(model, 100)
    model.save(path, save_format="h5")


def cnn_keras3(path: str) -> None:
    import keras

    inputs = keras.Input(shape=(8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="cnn")
    _set_weights(model, 200)
    model.save(path)


def module_saved_model(path: str) -> None:
    import tensorflow as tf

    class TwoHeads(tf.Module):
        def __init__(self):
            super().__init__(name="two_heads")
            self.w_embed = tf.Variable(_seeded_values((4, 3), 300), name="w_embed")
            self.w_score = tf.Variable(_seeded_values((3, 2), 301), name="w_score")
            self.b_score = tf.Variable(_seeded_values((2,), 302), name="b_score")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def __call__(self, x):
            embedding = tf.nn.tanh(tf.matmul(x, self.w_embed))
            scores = tf.matmul(embedding, self.w_score) + self.b_score
            return {"scores": scores, "embedding": embedding}

    module = TwoHeads()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})


def cnn_frozen(path: str) -> None:
    import tensorflow as tf
    import tf_keras
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    model = tf_keras.Sequential(
        [
            tf_keras.layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1), name="conv"),
            tf_keras.layers.Flatten(name="flatten"),
            tf_keras.layers.Dense(2, name="logits"),
        ]
    )
    _set_weights(model, 400)
    fn = tf.function(lambda x: model(x)).get_concrete_function(
        tf.TensorSpec([None, 6, 6, 1], tf.float32, name="x")
    )
    frozen = convert_variables_to_constants_v2(fn)
    graph_def = frozen.graph.as_graph_def()
    outputs = [n.name for n in graph_def.node if n.op == "Identity"]
    if FROZEN_OUTPUT_NODE not in outputs:
        raise SystemExit(f"expected output node {FROZEN_OUTPUT_NODE!r}, got {outputs}")
    with open(path, "wb") as f:
        f.write(graph_def.SerializeToString(deterministic=True))


def main() -> int:
    import tensorflow as tf

    tf.random.set_seed(0)
    np.random.seed(0)
    mlp_keras2(os.path.join(HERE, "mlp_keras2.h5"))
    cnn_keras3(os.path.join(HERE, "cnn_keras3.keras"))
    saved = os.path.join(HERE, "module_saved_model")
    shutil.rmtree(saved, ignore_errors=True)
    module_saved_model(saved)
    cnn_frozen(os.path.join(HERE, "cnn_frozen.pb"))
    for name in sorted(os.listdir(HERE)):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
