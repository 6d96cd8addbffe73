"""Converted layers models run in the real @tensorflow/tfjs 4.22 runtime (Node).

Unquantized models must match TensorFlow's own predictions within 1e-5. Quantized
models are checked two ways: against TF running the *dequantized* weights (1e-5: the
runtime decodes exactly what we wrote) and against the original model within the
documented quantization bound ``QUANT_BOUND`` (softmax/linear outputs of O(1)).
"""

from __future__ import annotations

from pathlib import Path

import keras_models as km
import numpy as np
import pytest

from tfjsconv import api
from tfjsconv.options import ConversionOptions

pytestmark = pytest.mark.tfjs

IN_FORMAT = {
    "mlp": "keras",
    "cnn": "keras",
    "lstm": "keras",
    "k3_cnn_h5": "keras",
    "k3_cnn_keras": "keras_keras",
    "k3_seq_keras": "keras_keras",
    "k3_zoo_keras": "keras_keras",
    "nested": "keras",
    "k3_nested_keras": "keras_keras",
    "k3_multi_keras": "keras_keras",
}

# Max |tfjs(quantized) - TF(original)| allowed on these test models' outputs.
QUANT_BOUND = {"uint8": 2e-2, "uint16": 1e-4, "float16": 2e-3}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def originals(models):
    """name -> TF predictions of the original model on ``km.INPUTS[name]()``."""
    return {n: km.as_list(km.load_original(models[n]).predict(km.INPUTS[n](), verbose=0)) for n in IN_FORMAT}


def conv(src, out, input_format, output_format="tfjs_layers_model", **opts) -> Path:
    api.convert(
        str(src), str(out), ConversionOptions(input_format=input_format, output_format=output_format, **opts)
    )
    return Path(out)


@pytest.mark.parametrize("name", sorted(IN_FORMAT))
def test_tfjs_matches_tensorflow(tfjs, models, originals, tmp_path, name):
    out = conv(models[name], tmp_path / "l", IN_FORMAT[name])
    got = tfjs.predict(out, km.as_list(km.INPUTS[name]()), kind="layers")
    assert len(got) == len(originals[name])
    for a, b in zip(got, originals[name]):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_tfjs_loads_split_and_sharded(tfjs, models, originals, tmp_path):
    out = conv(
        models["cnn"], tmp_path / "l", "keras", split_weights_by_layer=True, weight_shard_size_bytes=1000
    )
    got = tfjs.predict(out, [km.INPUTS["cnn"]()], kind="layers")
    np.testing.assert_allclose(got[0], originals["cnn"][0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", sorted(QUANT_BOUND))
@pytest.mark.parametrize("name", ["cnn", "k3_cnn_keras", "lstm"])
def test_tfjs_quantized(tfjs, models, originals, tmp_path, name, dtype):
    import tf_keras

    out = conv(models[name], tmp_path / "q", IN_FORMAT[name], **{f"quantize_{dtype}": True})
    x = km.INPUTS[name]()
    got = tfjs.predict(out, [x], kind="layers")[0]
    # TF running exactly the dequantized weights (layers -> keras dequantizes).
    h5 = conv(out, tmp_path / "deq.h5", "tfjs_layers_model", "keras")
    deq = tf_keras.models.load_model(h5, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(got, deq, atol=1e-5, rtol=0)
    err = np.abs(got - originals[name][0]).max()
    print(f"QUANT {name} {dtype} err={err:.3g}")
    assert err <= QUANT_BOUND[dtype], err


def test_tfjs_loads_layers_to_layers_output(tfjs, models, originals, tmp_path):
    src = conv(models["k3_seq_keras"], tmp_path / "l", "keras_keras")
    out = conv(src, tmp_path / "l2", "tfjs_layers_model", weight_shard_size_bytes=512)
    got = tfjs.predict(out, [km.INPUTS["k3_seq_keras"]()], kind="layers")
    np.testing.assert_allclose(got[0], originals["k3_seq_keras"][0], atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("keras3", [False, True], ids=["tf_keras_h5", "keras3_zip"])
def test_tfjs_mobilenet_v2(tfjs, tmp_path, keras3):
    """A realistic network: MobileNetV2 (random weights, logits) within 1e-4 of TF."""
    if keras3:
        src, fmt = km.k3_mobilenet_v2_keras(str(tmp_path)), "keras_keras"
    else:
        src, fmt = km.mobilenet_v2_h5(str(tmp_path), alpha=0.35, size=96, logits=True), "keras"
    out = conv(src, tmp_path / "l", fmt)
    x = km.sample_input((1, 96, 96, 3))
    expected = np.asarray(km.load_original(src).predict(x, verbose=0))
    got = tfjs.predict(out, [x], kind="layers")[0]
    assert np.abs(expected).max() > 1e-2  # not a degenerate all-zero output
    np.testing.assert_allclose(got, expected, atol=1e-4 * max(1.0, np.abs(expected).max()), rtol=0)
