"""How far a quantized model's outputs are from the float32 model's (the budget's unit).

* ``max_abs``: the largest absolute difference over every element of every output.
* ``max_rel``: per output, the largest absolute difference divided by that output's
  range (max - min of the float32 outputs over the calibration batch; 1.0 when the
  output is constant), then the largest over outputs. Scale-free, so one budget means
  the same for logits and for probabilities.
* ``top1``: per output with a last dimension >= 2 (a classifier), the fraction of rows
  whose arg-max changed; the largest over those outputs. In [0, 1].

``top1`` moves in steps of one sample, too coarse to rank weights by, so the search
ranks by ``max_rel`` (``proxy``) and checks every candidate with ``top1`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.formats import ERROR_METRICS as METRICS


def _float_pairs(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]):
    for ref, out in zip(reference, outputs, strict=False):
        if ref.dtype.kind == "f":
            yield ref.astype(np.float64), out.astype(np.float64)


def max_abs(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for ref, out in _float_pairs(reference, outputs):
        if ref.size:
            worst = max(worst, float(np.max(np.abs(out - ref))))
    return worst


def max_rel(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for ref, out in _float_pairs(reference, outputs):
        if ref.size:
            spread = float(ref.max() - ref.min()) or 1.0
            worst = max(worst, float(np.max(np.abs(out - ref))) / spread)
    return worst


def classifier_outputs(reference: Sequence[np.ndarray]) -> int:
    """How many outputs ``top1`` can judge (float, rank >= 1, last dimension >= 2)."""
    return sum(1 for r in reference if r.dtype.kind == "f" and r.ndim >= 1 and r.shape[-1] >= 2)


def top1(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    worst = 0.0
    for ref, out in _float_pairs(reference, outputs):
        if ref.ndim >= 1 and ref.shape[-1] >= 2 and ref.size:
            flips = np.argmax(ref, axis=-1) != np.argmax(out, axis=-1)
            worst = max(worst, float(np.mean(flips)))
    return worst


def check_applicable(metric: str, reference: Sequence[np.ndarray]) -> None:
    """Refuse a metric the model's outputs cannot be judged by, and non-finite outputs."""
    for ref in reference:
        if ref.dtype.kind == "f" and not np.isfinite(ref).all():
            raise ConversionError(
                "the float32 model's outputs on the calibration inputs contain NaN or Infinity; "
                "no error budget can be measured"
            )
    if not any(r.dtype.kind == "f" for r in reference):
        raise ConversionError("the model has no float outputs to measure an error budget on")
    if metric == "top1" and not classifier_outputs(reference):
        raise ConversionError("error_metric top1 needs a classifier output (last dimension >= 2)")


def error(metric: str, reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """The metric's value; NaN/Infinity in the outputs count as an infinite error."""
    for out in outputs:
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            return float("inf")
    if metric == "max_abs":
        return max_abs(reference, outputs)
    if metric == "max_rel":
        return max_rel(reference, outputs)
    if metric == "top1":
        return top1(reference, outputs)
    raise ConversionError(f"unknown error_metric {metric!r}; choose one of: {', '.join(METRICS)}")


def proxy(metric: str, reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """The continuous measure the search ranks weights by (module docstring)."""
    return error("max_rel" if metric == "top1" else metric, reference, outputs)
