"""Parity tolerances from an independent bound: TensorFlow's own float32 rounding error.

The same model evaluated in float64 gives ``spread = max|TF32 - TF64|``, the rounding
error TF's float32 run makes.  tfjs computes in float32 too, with other kernels
(summation order, JS ``Math`` transcendental functions rounded to float32), so its error
against the exact result is of the same order; we allow ``tol = 4 * spread`` (triangle
inequality: |tfjs - TF32| <= |tfjs - TF64| + spread, with tfjs's own error allowed to
be up to 3x TF's), and never less than 8 float32 ulps of the output scale
(``8 * 2**-23 * max(1, max|TF64|)``) for outputs whose float32 rounding happens to be
exact on TF's side.  Without a float64 twin only that ulp floor applies.  Integer and
string outputs must be equal.  The machine's CPU enters only through the measured
spread, so the bound follows the CPU the test runs on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

F32_ULP = 2.0**-23
SPREAD_FACTOR = 4.0
ULP_FLOOR = 8.0


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in float64; inf on a shape mismatch or unequal non-finite values."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        return (
            0.0 if all(x == y for x, y in zip(a.reshape(-1), b.reshape(-1), strict=False)) else float("inf")
        )
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0 if np.array_equal(a, b, equal_nan=True) else float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def tolerance(ref32: Sequence[np.ndarray], ref64: Sequence[np.ndarray] | None) -> tuple[float, str]:
    """(tolerance, how it was derived) -- see the module docstring."""
    if all(np.asarray(r).dtype.kind not in "fc" for r in ref32):
        return 0.0, "exact (integer/string outputs)"
    scale = max([1.0] + [float(np.max(np.abs(r))) for r in (ref64 or ref32) if np.size(r)])
    floor = ULP_FLOOR * F32_ULP * scale
    if ref64 is None:
        return floor, "ulp floor (no float64 twin)"
    spread = max(max_diff(a, b) for a, b in zip(ref32, ref64, strict=False))
    return max(SPREAD_FACTOR * spread, floor), f"4x f32-f64 spread {spread:.2g}"


# Past this tolerance a comparison says nothing. Outputs are O(1) (the corpus scales them
# to a peak of 1) and a tolerance is 4x TF's own float32-vs-float64 spread: above 1e-3
# the spread is over 2.5e-4, some 4000 float32 roundings (6e-8 each) all adding up one
# way, so the network amplifies rounding (deep stacks of random-weight residual blocks
# do) and two float32 runs of it, right or wrong, differ as much as a wrong conversion
# might. The other cases of the corpus have tolerances of at most 1e-4; the ones over
# it (docs/reach.md, marked ○) have 0.014 (ResNetRS200) to 12 (ResNetRS420).
COMPARABLE_TOL = 1e-3


# webgl (tfjs-backend-webgl, float32 textures): GLSL ES 3.00 highp rounds +, -, *
# correctly, as tfjs' JS kernels do, but only bounds division to 2.5 ulp, inversesqrt to
# 2, log to 3 and exp to 3 + 2|x| ulp (ESSL 3.00 section 4.5.1), against 0.5 ulp for a
# correctly rounded result: up to 6x the per-op error (exp's 2|x| term only where e^x is
# small: |x| e^-|x| <= 1/e ulps of 1). To first order a computation's error scales with
# its per-op error, so webgl gets 6x the cpu bound, floor included.
WEBGL_OP_ERROR_RATIO = 6.0


# webgl's packed depthwise convolution also adds an absolute error of its own: it seeds
# each sum with 1e-15 (``webgl_depthwise``), so partial sums round on float32's grid at
# 1e-15. ``webgl_depthwise.packed_depthwise_deviation`` measures what that does to a
# model's outputs by running TF with the shader's sums, seeded and from 0: one draw of
# those roundings, as TF's float32 run is one draw of its own; the GPU may round the
# products differently (fused multiply-add), so like the spread it gets SPREAD_FACTOR.
# Zero without such layers; negligible where activations are O(1).


def webgl_tolerance(tol: float, how: str, packed_deviation: float = 0.0) -> tuple[float, str]:
    """The webgl bound from the cpu bound ``tol`` (derived as ``how``) and the packed
    depthwise kernel's measured deviation (see above)."""
    if tol == 0.0:
        return tol, how
    wtol = WEBGL_OP_ERROR_RATIO * tol
    how = f"{how}, x{WEBGL_OP_ERROR_RATIO:g} for webgl's GLSL precision"
    if packed_deviation > 0.0:
        wtol += SPREAD_FACTOR * packed_deviation
        how += f", + {SPREAD_FACTOR:g}x the packed depthwise seed's deviation {packed_deviation:.2g}"
    return wtol, how


def for_backend(tol: float, how: str, backend: str) -> tuple[float, str]:
    """The bound on ``backend`` from the cpu bound ``tol`` (derived as ``how``): cpu and
    wasm as is (wasm's kernels compute in float32 too, in another summation order, which
    SPREAD_FACTOR allows for), webgl scaled (see above)."""
    return webgl_tolerance(tol, how) if backend == "webgl" else (tol, how)


def backend_tolerance(
    ref32: Sequence[np.ndarray], ref64: Sequence[np.ndarray] | None, backend: str
) -> tuple[float, str]:
    """``tolerance`` for one tfjs backend (``for_backend``)."""
    return for_backend(*tolerance(ref32, ref64), backend)


def keras_float64_outputs(path: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """A tf_keras SavedModel's outputs (by output name) from its float64 twin, or None
    when it is not a Keras model or the twin cannot be built."""
    import coverage_corpus as cc
    import tf_keras

    try:
        model = tf_keras.models.load_model(path, compile=False)
    except Exception:  # noqa: BLE001 - not loadable as Keras: no twin
        return None
    if not isinstance(model, tf_keras.Model):
        return None  # a tf.Module SavedModel loads as a plain object
    order = [t.name.split(":")[0] for t in model.inputs]
    if sorted(order) != sorted(inputs):
        return None
    outs = cc.float64_predictions(tf_keras, model, [np.asarray(inputs[name]) for name in order])
    if outs is None or len(outs) != len(model.output_names):
        return None
    return dict(zip(model.output_names, outs, strict=False))


def twin_tolerance(ref32: Sequence[np.ndarray], ref64: Sequence[np.ndarray] | None) -> float:
    """``tolerance`` for a case that must have its float64 twin: a twin that could not
    be built fails the test instead of falling back to the ulp floor."""
    assert ref64 is not None, "no float64 twin was built"
    return tolerance(ref32, ref64)[0]


def keras_bound(model, inputs: Sequence[np.ndarray]) -> float:
    """The bound for an in-memory Keras model (tf_keras or Keras 3) on ``inputs``: its own
    float32 run against its float64 twin (same config in float64, same weights)."""
    import coverage_corpus as cc

    inputs = [np.asarray(x) for x in inputs]
    return twin_tolerance(cc.predict(model, inputs), cc.float64_predictions(None, model, inputs))


def graph_float64_outputs(
    graph_def, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]
) -> list[np.ndarray] | None:
    """A frozen GraphDef's outputs from its float64 twin: every float32 type attribute and
    constant widened to float64, float32 feeds too.  None when TF cannot run the twin
    (an op without a float64 kernel)."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    twin = type(graph_def)()
    twin.CopyFrom(graph_def)
    for node in twin.node:
        for attr in node.attr.values():
            if attr.WhichOneof("value") == "type" and attr.type == types_pb2.DT_FLOAT:
                attr.type = types_pb2.DT_DOUBLE
            elif attr.WhichOneof("value") == "list":
                attr.list.type[:] = [
                    types_pb2.DT_DOUBLE if t == types_pb2.DT_FLOAT else t for t in attr.list.type
                ]
            elif attr.WhichOneof("value") == "tensor" and attr.tensor.dtype == types_pb2.DT_FLOAT:
                wide = tf.make_ndarray(attr.tensor).astype(np.float64)
                attr.tensor.CopyFrom(tf.make_tensor_proto(wide))
    wide_feeds = {
        name: (np.asarray(v, np.float64) if np.asarray(v).dtype == np.float32 else v)
        for name, v in feeds.items()
    }
    try:
        with tf.Graph().as_default() as graph:
            tf.compat.v1.import_graph_def(twin, name="")
            with tf.compat.v1.Session(graph=graph) as session:
                outs = session.run(list(fetches), wide_feeds)
    except Exception:  # noqa: BLE001 - no float64 kernel for some op: no twin
        return None
    return [np.asarray(o) for o in outs]
