"""Quantization math and weight selection, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from tfjsconv.errors import ConversionError
from tfjsconv.quantization import dequantize, quantize, resolve_quantization


def test_uint8_reference_example():
    data = np.linspace(-2.5, 2.5, 6).astype(np.float32)  # -2.5, -1.5, ..., 2.5
    stored, meta = quantize(data, "uint8")
    # scale = 5/255; zero point = round(2.5 / scale) = round(127.5) = 128 (half to even)
    scale = 5.0 / 255
    assert meta == {"dtype": "uint8", "min": -128 * scale, "scale": scale, "original_dtype": "float32"}
    assert meta["min"] == -2.5098039215686274 and meta["scale"] == 0.0196078431372549
    assert stored.dtype == np.uint8 and bytes(stored).hex() == "0034669accff"


def test_uint16_hand_computed():
    stored, meta = quantize(np.array([0.0, 1.0, 0.5], np.float32), "uint16")
    # min = 0 so the nudge keeps min at 0; 0.5 / (1/65535) = 32767.5 rounds to even 32768
    assert meta == {"dtype": "uint16", "min": 0.0, "scale": 1.0 / 65535, "original_dtype": "float32"}
    assert stored.tolist() == [0, 65535, 32768]


def test_no_nudge_when_zero_outside_range():
    stored, meta = quantize(np.array([1.0, 2.0, 3.0], np.float32), "uint8")
    assert meta["min"] == 1.0 and meta["scale"] == 2.0 / 255
    # (2 - 1) / (2/255) = 127.5 -> 128 (half to even)
    assert stored.tolist() == [0, 128, 255]


@pytest.mark.parametrize("qdtype", ["uint8", "uint16"])
def test_zero_is_exact_after_round_trip(qdtype):
    rng = np.random.default_rng(1)
    data = rng.normal(size=1000).astype(np.float32)
    data[::7] = 0.0
    stored, meta = quantize(data, qdtype)
    back = dequantize(stored, meta)
    assert back.dtype == np.float32
    assert (back[::7] == 0.0).all()
    np.testing.assert_allclose(back, data, atol=meta["scale"] / 2 * 1.0001 + 1e-7, rtol=0)


def test_min_equals_max():
    stored, meta = quantize(np.full((2, 2), 0.75, np.float32), "uint8")
    assert meta == {"dtype": "uint8", "min": 0.75, "scale": 1.0, "original_dtype": "float32"}
    assert stored.dtype == np.uint8 and stored.tolist() == [[0, 0], [0, 0]]
    assert dequantize(stored, meta).tolist() == [[0.75, 0.75], [0.75, 0.75]]


def test_float16():
    stored, meta = quantize(np.array([1.0, 0.1], np.float32), "float16")
    assert meta == {"dtype": "float16", "original_dtype": "float32"}
    assert stored.dtype == np.float16 and bytes(stored.astype("<f2")).hex() == "003c662e"
    assert dequantize(stored, meta).tolist() == [1.0, np.float32(np.float16(0.1))]


def test_float16_overflow_rejected():
    with pytest.raises(ConversionError, match="weight big has values beyond the float16 range"):
        quantize(np.array([1e6], np.float32), "float16", name="big")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("qdtype", ["uint8", "uint16", "float16"])
def test_non_finite_rejected(bad, qdtype):
    with pytest.raises(
        ConversionError, match=f"weight w contains NaN or Infinity and cannot be quantized to {qdtype}"
    ):
        quantize(np.array([0.0, bad], np.float32), qdtype, name="w")


def test_only_float32():
    with pytest.raises(ConversionError, match="only float32"):
        quantize(np.array([1], np.int32), "uint8", name="i")


def test_float64_math_not_float32():
    # The affine math is float64 (NumPy >= 2 behaviour of the reference); float32 math would
    # give a different code for some values. Compare against an explicit float64 computation.
    rng = np.random.default_rng(2)
    data = rng.normal(size=100000).astype(np.float32)
    stored, meta = quantize(data, "uint8")
    lo, scale = meta["min"], meta["scale"]
    hi = 255 * scale + lo
    expected = np.round((np.clip(data.astype(np.float64), lo, hi) - lo) / scale).astype(np.uint8)
    np.testing.assert_array_equal(stored, expected)


def test_dequantize_int32_rounds_like_math_round():
    meta = {"dtype": "uint8", "min": -1.5, "scale": 1.0, "original_dtype": "int32"}
    assert dequantize(np.array([0, 1, 2, 3], np.uint8), meta).tolist() == [-1, 0, 1, 2]


# ------------------------------------------------------------------ resolve_quantization

NAMES = ["dense/kernel", "dense/bias", "conv/kernel", "Conv2/kernel"]


def test_fallthrough_only():
    assert resolve_quantization(NAMES, {"uint8": True}) == {n: "uint8" for n in NAMES}


def test_no_specs():
    assert resolve_quantization(NAMES, {}) == {}


def test_patterns_and_fallthrough():
    got = resolve_quantization(NAMES, {"float16": ("*kernel",), "uint8": True})
    assert got == {
        "dense/kernel": "float16",
        "dense/bias": "uint8",
        "conv/kernel": "float16",
        "Conv2/kernel": "float16",
    }


def test_star_crosses_slash_and_is_case_sensitive():
    assert resolve_quantization(NAMES, {"uint16": ("conv*",)}) == {"conv/kernel": "uint16"}
    assert resolve_quantization(NAMES, {"uint16": ("[cC]onv?/*",)}) == {"Conv2/kernel": "uint16"}


def test_string_spec_is_one_pattern():
    assert resolve_quantization(NAMES, {"uint8": "dense/bias"}) == {"dense/bias": "uint8"}


def test_two_dtypes_same_weight():
    with pytest.raises(
        ConversionError, match=r"^Two quantization dtypes float16, uint8 match the same weight dense/kernel$"
    ):
        resolve_quantization(NAMES, {"uint8": ("dense/*",), "float16": ("*kernel",)})


def test_two_fallthroughs():
    with pytest.raises(ConversionError, match="More than one quantization fallthrough"):
        resolve_quantization(NAMES, {"uint8": True, "float16": True})


def test_pattern_matching_nothing():
    with pytest.raises(ConversionError, match=r"pattern 'dense/Kernel' \(for uint8\) matches no weight"):
        resolve_quantization(NAMES, {"uint8": ("dense/*", "dense/Kernel")})


def test_fallthrough_with_no_weights_is_fine():
    assert resolve_quantization([], {"uint8": True}) == {}


@pytest.mark.parametrize(
    "specs, message",
    [
        ({"int8": True}, "unknown quantization dtype 'int8'"),
        ({"uint8": ()}, "invalid quantization selector for uint8"),
        ({"uint8": 3}, "invalid quantization selector for uint8"),
        ({"uint8": ("",)}, "invalid quantization selector for uint8"),
    ],
)
def test_bad_specs(specs, message):
    with pytest.raises(ConversionError, match=message):
        resolve_quantization(NAMES, specs)


def test_same_pattern_twice_same_dtype_is_not_a_conflict():
    assert resolve_quantization(NAMES, {"uint8": ("dense/*", "*/bias")}) == {
        "dense/kernel": "uint8",
        "dense/bias": "uint8",
    }
