"""Checks the example models Bazel built, byte by byte, against independent truth.

The expected weights are recomputed from the seeds in examples/models/generate.py
(numpy only), never read back from converter output; shards are decoded here with
plain numpy following the weightsManifest format.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import unittest

import numpy as np

# The main repository's runfiles directory: "rules_tfjs" in WORKSPACE mode, "_main" under bzlmod.
WORKSPACE = os.path.join(os.environ.get("TEST_SRCDIR", ""), os.environ.get("TEST_WORKSPACE", "rules_tfjs"))
CONVERTED_BY = "TensorFlow.js Converter v4.22.0 (tfjsconv 0.1.0)"
_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}


def _path(*parts: str) -> str:
    return os.path.join(WORKSPACE, *parts)


def _generator():
    spec = importlib.util.spec_from_file_location("generate", _path("examples", "models", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEEDED = _generator()._seeded_values


def load(target: str):
    """(model.json dict, [(name, float array)]) decoded straight from the shards."""
    root = _path("examples", target)
    with open(os.path.join(root, "model.json"), "rb") as f:
        raw = f.read()
    model = json.loads(raw)
    weights = []
    listed = {"model.json"}
    for group in model["weightsManifest"]:
        listed.update(group["paths"])
        data = b"".join(open(os.path.join(root, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            q = w.get("quantization")
            stored = q["dtype"] if q else w["dtype"]
            count = math.prod(w["shape"])
            size = count * _BYTES[stored]
            arr = np.frombuffer(data[offset : offset + size], dtype=np.dtype(stored).newbyteorder("<"))
            offset += size
            if q and stored in ("uint8", "uint16"):
                arr = arr.astype(np.float64) * q["scale"] + q["min"]
            weights.append((w["name"], arr.astype(np.float32).reshape(w["shape"])))
        assert offset == len(data), f"{target}: shards hold {len(data)} bytes, manifest needs {offset}"
    assert sorted(os.listdir(root)) == sorted(listed), f"{target}: unexpected files {os.listdir(root)}"
    return model, weights


def mlp_expected():
    shapes = [(4, 8), (8,), (8, 3), (3,)]
    return [SEEDED(s, 100 + i) for i, s in enumerate(shapes)]


class ExamplesTest(unittest.TestCase):
    def test_mlp_layers_weights_and_metadata(self):
        model, weights = load("mlp_layers")
        self.assertEqual(model["format"], "layers-model")
        self.assertEqual(model["convertedBy"], CONVERTED_BY)
        self.assertEqual(
            [n for n, _ in weights], ["hidden/kernel", "hidden/bias", "probs/kernel", "probs/bias"]
        )
        for (_, got), want in zip(weights, mlp_expected(), strict=False):
            np.testing.assert_array_equal(got, want)
        with open(_path("examples", "metadata", "training_info.json")) as f:
            self.assertEqual(model["userDefinedMetadata"], {"training_info": json.load(f)})

    def test_mlp_layers_uint8_sharded_and_within_half_a_step(self):
        model, weights = load("mlp_layers_uint8")
        self.assertEqual(len(model["weightsManifest"]), 2)  # split_weights_by_layer
        root = _path("examples", "mlp_layers_uint8")
        for group in model["weightsManifest"]:
            for p in group["paths"]:
                self.assertLessEqual(os.path.getsize(os.path.join(root, p)), 24)
        metas = [w["quantization"] for g in model["weightsManifest"] for w in g["weights"]]
        for (_, got), want, q in zip(weights, mlp_expected(), metas, strict=False):
            self.assertEqual(q["dtype"], "uint8")
            np.testing.assert_allclose(got, want, rtol=0, atol=q["scale"] / 2 + 1e-6)

    def test_mlp_graph_holds_the_same_weights(self):
        model, weights = load("mlp_graph")
        self.assertEqual(model["format"], "graph-model")
        self.assertEqual(len(model["weightsManifest"]), 1)
        got = sorted(tuple(np.round(a.ravel(), 6)) for _, a in weights)
        want = sorted(tuple(np.round(a.ravel(), 6)) for a in mlp_expected())
        self.assertEqual(got, want)

    def test_module_graph_structured_outputs(self):
        model, weights = load("module_graph")
        self.assertEqual(model["userDefinedMetadata"]["structuredOutputKeys"], ["embedding", "scores"])
        want = [SEEDED((4, 3), 300), SEEDED((3, 2), 301), SEEDED((2,), 302)]
        got = sorted(tuple(a.ravel()) for _, a in weights)
        self.assertEqual(got, sorted(tuple(a.ravel()) for a in want))

    def test_module_graph_uint16(self):
        model, weights = load("module_graph_uint16")
        want = {a.shape: a for a in [SEEDED((4, 3), 300), SEEDED((3, 2), 301), SEEDED((2,), 302)]}
        metas = [w["quantization"] for g in model["weightsManifest"] for w in g["weights"]]
        for (_, got), q in zip(weights, metas, strict=False):
            self.assertEqual(q["dtype"], "uint16")
            np.testing.assert_allclose(got, want[got.shape], rtol=0, atol=q["scale"] / 2 + 1e-6)

    def test_cnn_keras3_layers(self):
        model, weights = load("cnn_keras3_layers")
        self.assertEqual(model["format"], "layers-model")
        self.assertEqual(model["userDefinedMetadata"], {"labels": ["cat", "dog"]})
        shapes = [(3, 3, 1, 4), (4,), (36, 2), (2,)]
        got = {tuple(a.shape): a for _, a in weights}
        for i, s in enumerate(shapes):
            np.testing.assert_array_equal(got[s], SEEDED(s, 200 + i))


if __name__ == "__main__":
    unittest.main()
