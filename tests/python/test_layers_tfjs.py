"""Converted layers models run in the real @tensorflow/tfjs 4.22 runtime (Node).

Unquantized models must match TensorFlow's own predictions within the model's parity
bound (``tolerances.keras_bound``: 4x TF's own float32-vs-float64 gap on that input,
at least 8 float32 ulps of the output scale).  Quantized models are checked two ways:
against TF running the *dequantized* weights, within that model's parity bound (the
runtime decodes exactly what we wrote), and against the original model within
``|TF(dequantized) - TF(original)|`` + that bound (triangle inequality: what the
quantization itself moves, measured in TF, plus the runtime's float32 error).  The
documented ceilings ``QUANT_BOUND`` must also hold: they are what a user is promised.
"""

from __future__ import annotations

from pathlib import Path

import keras_models as km
import numpy as np
import pytest
import tolerances

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


@pytest.fixture(scope="session")
def bounds(models):
    """name -> the original model's parity bound on ``km.INPUTS[name]()``."""
    return {
        n: tolerances.keras_bound(km.load_original(models[n]), km.as_list(km.INPUTS[n]())) for n in IN_FORMAT
    }


def assert_close(got, want, tol: float) -> None:
    print(f"max diff {tolerances.max_diff(got, want):.3g}, bound {tol:.3g}")
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)


def conv(src, out, input_format, output_format="tfjs_layers_model", **opts) -> Path:
    api.convert(
        str(src), str(out), ConversionOptions(input_format=input_format, output_format=output_format, **opts)
    )
    return Path(out)


@pytest.mark.parametrize("name", sorted(IN_FORMAT))
def test_tfjs_matches_tensorflow(tfjs, models, originals, bounds, tmp_path, name):
    out = conv(models[name], tmp_path / "l", IN_FORMAT[name])
    got = tfjs.predict(out, km.as_list(km.INPUTS[name]()), kind="layers")
    assert len(got) == len(originals[name])
    for a, b in zip(got, originals[name], strict=False):
        assert_close(a, b, bounds[name])


def test_tfjs_loads_split_and_sharded(tfjs, models, originals, bounds, tmp_path):
    out = conv(
        models["cnn"], tmp_path / "l", "keras", split_weights_by_layer=True, weight_shard_size_bytes=1000
    )
    got = tfjs.predict(out, [km.INPUTS["cnn"]()], kind="layers")
    assert_close(got[0], originals["cnn"][0], bounds["cnn"])


@pytest.mark.parametrize("dtype", sorted(QUANT_BOUND))
@pytest.mark.parametrize("name", ["cnn", "k3_cnn_keras", "lstm"])
def test_tfjs_quantized(tfjs, models, originals, tmp_path, name, dtype):
    import tf_keras

    out = conv(models[name], tmp_path / "q", IN_FORMAT[name], **{f"quantize_{dtype}": True})
    x = km.INPUTS[name]()
    got = tfjs.predict(out, [x], kind="layers")[0]
    # TF running exactly the dequantized weights (layers -> keras dequantizes).
    h5 = conv(out, tmp_path / "deq.h5", "tfjs_layers_model", "keras")
    dequantized = tf_keras.models.load_model(h5, compile=False)
    deq = dequantized.predict(x, verbose=0)
    tol = tolerances.keras_bound(dequantized, [x])
    assert_close(got, deq, tol)
    shift = tolerances.max_diff(deq, originals[name][0])  # what quantizing moved, in TF
    assert shift > 0  # the weights really were quantized
    err = tolerances.max_diff(got, originals[name][0])
    print(f"QUANT {name} {dtype} err={err:.3g} TF's own shift={shift:.3g}")
    assert err <= shift + tol, (err, shift, tol)
    assert err <= QUANT_BOUND[dtype], err


def test_tfjs_loads_layers_to_layers_output(tfjs, models, originals, bounds, tmp_path):
    src = conv(models["k3_seq_keras"], tmp_path / "l", "keras_keras")
    out = conv(src, tmp_path / "l2", "tfjs_layers_model", weight_shard_size_bytes=512)
    got = tfjs.predict(out, [km.INPUTS["k3_seq_keras"]()], kind="layers")
    assert_close(got[0], originals["k3_seq_keras"][0], bounds["k3_seq_keras"])


@pytest.mark.slow
@pytest.mark.parametrize("keras3", [False, True], ids=["tf_keras_h5", "keras3_zip"])
def test_tfjs_mobilenet_v2(tfjs, tmp_path, keras3):
    """A realistic network: MobileNetV2 (random weights, logits) within its parity bound."""
    if keras3:
        src, fmt = km.k3_mobilenet_v2_keras(str(tmp_path)), "keras_keras"
    else:
        src, fmt = km.mobilenet_v2_h5(str(tmp_path), alpha=0.35, size=96, logits=True), "keras"
    out = conv(src, tmp_path / "l", fmt)
    x = km.sample_input((1, 96, 96, 3))
    original = km.load_original(src)
    expected = np.asarray(original.predict(x, verbose=0))
    got = tfjs.predict(out, [x], kind="layers")[0]
    assert np.abs(expected).max() > 1e-2  # not a degenerate all-zero output
    tol = tolerances.keras_bound(original, [x])
    assert_close(got, expected, tol)
