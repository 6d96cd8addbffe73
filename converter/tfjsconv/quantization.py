"""Weight quantization: choosing which weights to quantize, and the quantize/dequantize math.

The format is fixed by TensorFlow.js (``tfjs-core`` decodes it), so the math follows the
reference converter exactly:

* affine ``uint8``/``uint16``: ``q = round((clip(x, min', max') - min') / scale)`` where
  ``scale = (max - min) / quant_max`` and, when ``min <= 0 <= max``, ``min'`` is "nudged" to
  ``-round(-min / scale) * scale`` so that 0.0 is exactly representable (zero padding and
  ReLU outputs stay exact). ``min == max`` stores zeros with ``scale = 1.0``.
* ``float16``: ``x.astype(float16)`` (IEEE round-to-nearest-even).

Large weights are processed in slices on up to four threads; every step is elementwise
(or a min/max), so the bytes are the same for any slicing or thread count (tested
against the whole-array math).

All affine arithmetic is done in float64. That is what the reference does under NumPy >= 2
(NEP 50 promotes the float32 array to float64 when combined with ``np.float64`` scalars);
under NumPy 1.x value-based casting kept it in float32, which changes about 1 code in 10^4
by +-1 LSB. We do the float64 math explicitly so the bytes do not depend on the NumPy
version installed.

Name matching uses ``fnmatch.fnmatchcase``: the reference uses ``fnmatch.filter`` which
lower-cases both sides on Windows (``os.path.normcase``), so the same flags quantized
different weights per OS. Weight names are not file paths; case-sensitive matching on every
OS keeps the output identical on every machine.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError

_log = logging.getLogger(__name__)

QUANTIZATION_DTYPES: tuple[str, ...] = ("float16", "uint16", "uint8")

_AFFINE: Mapping[str, tuple[type, int]] = {
    "uint8": (np.uint8, 255),
    "uint16": (np.uint16, 65535),
}

_FLOAT16_MAX = float(np.finfo(np.float16).max)

# Elements per step of the float64 arithmetic: a large weight is quantized in slices
# (every operation is elementwise, so the bytes do not depend on the slicing), so its
# float64 temporaries cost 32 MiB instead of twice the weight.
_CHUNK = 1 << 22
# Slices run on this many threads at most (numpy releases the GIL in these loops, and
# each slice's result lands in its own part of the output: the bytes do not depend on
# the thread count).
_MAX_THREADS = 4


def _chunks(flat: np.ndarray):
    for start in range(0, flat.size, _CHUNK):
        yield start, flat[start : start + _CHUNK]


def _threads(size: int) -> int:
    return max(1, min(_MAX_THREADS, os.cpu_count() or 1, -(-size // _CHUNK)))


def _each_slice(flat: np.ndarray, work: Callable[[int, np.ndarray], Any]) -> list:
    """``work(start, slice)`` for every ``_CHUNK`` slice of ``flat``, results in order;
    on threads when there is more than one slice."""
    threads = _threads(flat.size)
    if threads == 1:
        return [work(start, part) for start, part in _chunks(flat)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda item: work(*item), _chunks(flat)))


def _spec_patterns(dtype: str, spec: Any) -> tuple[bool, tuple[str, ...]]:
    """Normalize one spec to (is_fallthrough, patterns)."""
    if spec is True:
        return True, ()
    if isinstance(spec, str):
        spec = (spec,)
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(p, str) and p for p in spec):
        return False, tuple(spec)
    raise ConversionError(
        f"invalid quantization selector for {dtype}: {spec!r} "
        "(expected True or a list of weight-name patterns)"
    )


def resolve_quantization(names: Sequence[str], specs: Mapping[str, Any]) -> dict[str, str]:
    """Map each weight name that is to be quantized to its quantized dtype.

    ``specs`` is ``{'float16'|'uint8'|'uint16': True | ('pattern', ...)}``. ``True`` is the
    fallthrough: every weight no pattern claims. Errors (all ``ConversionError``): unknown
    dtype, more than one fallthrough, a name matched by two dtypes, and a pattern matching
    no weight at all (a typo would otherwise silently skip quantization). A model without
    any weight is only warned about: there is nothing a pattern could have meant.
    """
    if not specs:
        return {}
    unknown = sorted(k for k in specs if k not in QUANTIZATION_DTYPES)
    if unknown:
        raise ConversionError(
            f"unknown quantization dtype {unknown[0]!r}; choose from float16, uint8, uint16"
        )
    if not names:
        _log.warning("the model has no weights; nothing to quantize")
        return {}
    fallthrough = []
    claimed: dict[str, list] = {}
    for dtype in sorted(specs):
        spec = specs[dtype]
        if spec is None or spec is False:
            continue
        is_fallthrough, patterns = _spec_patterns(dtype, spec)
        if is_fallthrough:
            fallthrough.append(dtype)
            continue
        for pattern in patterns:
            matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise ConversionError(f"quantization pattern {pattern!r} (for {dtype}) matches no weight")
            for name in matched:
                dtypes = claimed.setdefault(name, [])
                if dtype not in dtypes:
                    dtypes.append(dtype)
    if len(fallthrough) > 1:
        raise ConversionError(
            "More than one quantization fallthrough provided "
            f"({', '.join(fallthrough)}), exactly one is supported"
        )
    result: dict[str, str] = {}
    for name in names:
        dtypes = claimed.get(name, [])
        if len(dtypes) > 1:
            raise ConversionError(
                f"Two quantization dtypes {', '.join(sorted(dtypes))} match the same weight {name}"
            )
        if dtypes:
            result[name] = dtypes[0]
        elif fallthrough:
            result[name] = fallthrough[0]
    return result


def quantize(array: np.ndarray, dtype: str, *, name: str = "<unnamed>") -> tuple[np.ndarray, dict[str, Any]]:
    """Quantize a float32 array; return (stored array, manifest ``quantization`` dict).

    The dict has the manifest's key order: ``dtype, min, scale, original_dtype`` (affine) or
    ``dtype, original_dtype`` (float16). ``min``/``scale`` are Python floats so ``json``
    prints them with ``repr`` like the reference.
    """
    data = np.asarray(array)
    if data.dtype.kind != "f" or data.dtype.itemsize != 4:
        raise ConversionError(f"weight {name}: only float32 weights can be quantized, got {data.dtype}")
    if dtype not in QUANTIZATION_DTYPES:
        raise ConversionError(f"unknown quantization dtype {dtype!r}; choose from float16, uint8, uint16")
    flat = data.reshape(-1)
    # float32 -> float64 is exact and monotonic: the float64 extremes are these.  min/max
    # propagate NaN, and an infinity is an extreme: finite extremes mean finite values.
    extremes = np.array(_each_slice(flat, lambda _, part: (part.min(), part.max())), np.float32)
    lo = float(extremes[:, 0].min()) if data.size else 0.0
    hi = float(extremes[:, 1].max()) if data.size else 0.0
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConversionError(f"weight {name} contains NaN or Infinity and cannot be quantized to {dtype}")
    if dtype == "float16":
        if max(hi, -lo) > _FLOAT16_MAX:
            raise ConversionError(
                f"weight {name} has values beyond the float16 range (+-65504); "
                "it cannot be quantized to float16"
            )
        half = np.empty(flat.size, np.float16)
        _each_slice(flat, lambda start, part: np.copyto(half[start : start + part.size], part, "same_kind"))
        return half.reshape(data.shape), {"dtype": "float16", "original_dtype": "float32"}

    qtype, quant_max = _AFFINE[dtype]
    if data.size == 0:
        return np.zeros(data.shape, qtype), {
            "dtype": dtype,
            "min": 0.0,
            "scale": 1.0,
            "original_dtype": "float32",
        }
    if lo == hi:
        return np.zeros(data.shape, qtype), {
            "dtype": dtype,
            "min": lo,
            "scale": 1.0,
            "original_dtype": "float32",
        }
    scale = (hi - lo) / quant_max
    if lo <= 0.0 <= hi:
        zero_point = float(np.round((0.0 - lo) / scale))
        lo = -zero_point * scale
        hi = quant_max * scale + lo
    stored: np.ndarray = np.empty(flat.size, qtype)
    buffers: queue.SimpleQueue = queue.SimpleQueue()  # one float64 slice per thread, reused
    for _ in range(_threads(flat.size)):
        buffers.put(np.empty(min(flat.size, _CHUNK), np.float64))

    def affine(start: int, part: np.ndarray) -> None:
        buffer = buffers.get()
        wide = buffer[: part.size]
        np.clip(part, lo, hi, out=wide)  # computed in float64, as on float64 copies
        wide -= lo
        wide /= scale
        np.round(wide, out=wide)
        np.copyto(stored[start : start + wide.size], wide, casting="unsafe")
        buffers.put(buffer)

    _each_slice(flat, affine)
    stored = stored.reshape(data.shape)
    return stored, {"dtype": dtype, "min": float(lo), "scale": float(scale), "original_dtype": "float32"}


def dequantize(stored: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """Invert ``quantize`` the way tfjs-core decodes weights.

    tfjs computes ``v * scale + min`` in JS doubles and stores into a Float32Array, so we
    compute in float64 and round to float32 once. int32 originals (legacy manifests) are
    ``Math.round``-ed like tfjs.
    """
    qdtype = meta.get("dtype")
    original = meta.get("original_dtype", "float32")
    if qdtype == "float16":
        return np.asarray(stored).astype(np.float32)
    if qdtype not in _AFFINE:
        raise ConversionError(f"unknown quantization dtype {qdtype!r} in weights manifest")
    values = np.asarray(stored).astype(np.float64) * float(meta["scale"]) + float(meta["min"])
    if original == "int32":
        # Math.round rounds .5 up (towards +inf); np.floor(x + 0.5) does the same.
        return np.floor(values + 0.5).astype(np.int32)
    return values.astype(np.float32)
