"""tfjs-backend-webgl's packed depthwise convolution, emulated in TensorFlow.

tfjs 4.22's ``DepthwiseConvPacked2DProgram`` (``conv_packed_gpu_depthwise.ts``; used by
``DepthwiseConv2dNative`` and ``FusedDepthwiseConv2D`` when ``WEBGL_PACK_DEPTHWISECONV``
is on, the stride width is at most 2 and the depth multiplier is 1) starts each sum at
``1e-15`` ("seems to reduce GPU accuracy loss"), adds the filter taps row by row, then
subtracts ``1e-15``.  Every partial sum is therefore rounded to float32's grid at 1e-15,
``2**-73 ~ 1.1e-22``: an absolute error that no relative bound covers.  It vanishes
next to O(1) activations, but a random-weight network whose activations fall to ~1e-19
(MobileNet at init: identity BatchNorms, small depthwise kernels) and whose head scales
them back to O(1) turns it into a visible output error.

``packed_depthwise_deviation`` runs a Keras model with its packed-path layers computed in
that order of float32 operations, once seeded and once from 0, and returns how far the
outputs move: the part of webgl's error that comes from the seed, independent of any
tfjs output.  Layers that reach the kernel: ``DepthwiseConv2D`` and ``SeparableConv2D``
with depth multiplier 1, and ``Conv2D(groups=C)`` with ``C`` filters (the converter
rewrites it into a ``DepthwiseConv2dNative``), each channels-last with stride width <= 2.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# The literal in the shader, as GLSL's highp float holds it.
SEED = np.float32(1e-15)
MAX_PACKED_STRIDE_WIDTH = 2


def _pads(size: int, k: int, stride: int, dilation: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) as TensorFlow (and tfjs) compute them."""
    span = (k - 1) * dilation + 1
    if padding == "valid":
        return (size - span) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def seeded_depthwise(
    x: Any,
    kernel: Any,
    strides: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    seed: np.float32 = SEED,
) -> Any:
    """Depthwise convolution of ``x`` (NHWC, float32) with ``kernel`` (``[h, w, C]``),
    summed as the packed shader sums: ``seed``, then taps row-major, then minus ``seed``."""
    import tensorflow as tf

    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    oh, top, bottom = _pads(int(x.shape[1]), kh, strides[0], dilation[0], padding)
    ow, left, right = _pads(int(x.shape[2]), kw, strides[1], dilation[1], padding)
    xp = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    acc = tf.fill(tf.stack([tf.shape(x)[0], oh, ow, tf.shape(x)[3]]), seed)
    for r in range(kh):
        for c in range(kw):
            r0, c0 = r * dilation[0], c * dilation[1]
            patch = xp[
                :,
                r0 : r0 + (oh - 1) * strides[0] + 1 : strides[0],
                c0 : c0 + (ow - 1) * strides[1] + 1 : strides[1],
                :,
            ]
            acc = acc + patch * kernel[r, c]
    return acc - seed


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _emulation(layer: Any, seed: np.float32 = SEED) -> Callable[..., Any] | None:
    """The seeded forward pass of ``layer`` if tfjs-webgl runs it on the packed kernel."""
    import tensorflow as tf

    kind = next(
        (
            k.__name__
            for k in type(layer).__mro__
            if k.__name__ in ("DepthwiseConv2D", "SeparableConv2D", "Conv2D")
        ),
        None,
    )
    if kind is None or getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    strides, dilation = _pair(layer.strides), _pair(layer.dilation_rate)
    if strides[1] > MAX_PACKED_STRIDE_WIDTH:
        return None
    padding = str(layer.padding).lower()
    if kind == "Conv2D":  # groups = C, filter [h, w, 1, C]
        kernel, one_axis = layer.kernel, 2
        groups = int(getattr(layer, "groups", 1))
        if groups == 1 or int(kernel.shape[2]) != 1 or int(kernel.shape[3]) != groups:
            return None
    else:  # filter [h, w, C, multiplier]: tf_keras names it depthwise_kernel, Keras 3 kernel
        kernel, one_axis = getattr(layer, "depthwise_kernel", None), 3
        kernel = layer.kernel if kernel is None else kernel
        if int(kernel.shape[3]) != 1:
            return None

    def call(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        t = tf.convert_to_tensor
        y = seeded_depthwise(t(inputs), tf.squeeze(t(kernel), one_axis), strides, padding, dilation, seed)
        if kind == "SeparableConv2D":
            y = tf.nn.conv2d(y, t(layer.pointwise_kernel), strides=1, padding="VALID")
        if layer.use_bias:
            y = y + t(layer.bias)
        return layer.activation(y) if layer.activation is not None else y

    return call


def packed_layers(model: Any) -> list[Any]:
    """The layers of ``model`` (nested ones too) that tfjs-webgl runs on the packed kernel."""
    return [layer for layer in model._flatten_layers(include_self=False) if _emulation(layer) is not None]


@contextlib.contextmanager
def seeded_sums(layers: list[Any], seed: np.float32 = SEED) -> Iterator[list[int]]:
    """Within: each of ``layers`` computes the packed shader's sums (an instance ``call``),
    yields a call counter so the caller can check the emulation ran."""
    calls = [0]
    for layer in layers:
        emulate = _emulation(layer, seed)
        assert emulate is not None

        def counted(*args: Any, _emulate: Callable[..., Any] = emulate, **kwargs: Any) -> Any:
            calls[0] += 1
            return _emulate(*args, **kwargs)

        object.__setattr__(layer, "call", counted)
    try:
        yield calls
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")


def packed_depthwise_deviation(model: Any, inputs: Any) -> float:
    """max |outputs with the packed kernel's seeded sums - the same sums unseeded|: the
    seed's own effect (the same order of float32 operations both times, so a summation
    order other than TF's adds nothing); 0.0 when no layer reaches the packed kernel."""
    import coverage_corpus as cc

    layers = packed_layers(model)
    if not layers:
        return 0.0
    runs = []
    for seed in (SEED, np.float32(0.0)):
        with seeded_sums(layers, seed) as calls:
            runs.append(cc.predict(model, inputs))
        if calls[0] < len(layers):
            raise RuntimeError(f"the depthwise emulation ran in {calls[0]} of {len(layers)} layers")
    return max(
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) for a, b in zip(*runs, strict=True)
    )
