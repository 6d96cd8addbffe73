"""MobileNetV2 (random weights, BN statistics from data, 96x96) through both graph paths.

The realistic model of the suite: every conv is a fused op, outputs match TF in the real
tfjs runtime (cpu and wasm), and the conversion's peak memory is measured in a fresh
process so it cannot hide behind what the test process already allocated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import graph_models as gm
import numpy as np
import pytest

pytestmark = [pytest.mark.tfjs, pytest.mark.slow]

_CONVERT = """
import sys
from tfjsconv import api
from tfjsconv.options import ConversionOptions
api.convert(sys.argv[1], sys.argv[2], ConversionOptions(input_format=sys.argv[3], output_format="tfjs_graph_model"))
"""


@pytest.fixture(scope="module")
def mnv2(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnv2")
    path, x = gm.mobilenet_v2(str(root), size=96, classes=10)
    want = gm.predict_saved_model(path, x)
    return root, path, x, want


def float32_spread(h5_path: str, x: np.ndarray) -> float:
    """max |TF float32 - TF float64| of the same MobileNetV2 weights on ``x``.

    This is how far float32 rounding moves the outputs on *this* CPU (TF's kernels
    differ by ISA: AVX2 vs AVX-512 machines round differently).  tfjs computes in
    float32 too, with other summation orders; its own distance to float64 measured
    here is 0.9x (cpu) / 0.6x (wasm) TF's.  So |tfjs - TF32| <= |tfjs - f64| + |TF32 - f64|
    <= (2 + 1) * spread, allowing tfjs twice TF's rounding error: the tolerance is
    3 * spread (measured on an Intel runner: spread 3.7e-6, tfjs-vs-TF 7.0e-6 cpu,
    3.9e-6 wasm, so 1.1e-5; a real bug such as weights rounded to float16 moves the
    outputs far more, see ``test_mobilenet_tolerance_catches_float16_weights``).
    """
    import tf_keras

    model32 = tf_keras.models.load_model(h5_path, compile=False)
    tf_keras.backend.set_floatx("float64")
    try:
        model64 = tf_keras.applications.MobileNetV2(input_shape=x.shape[1:], weights=None, classes=10)
    finally:
        tf_keras.backend.set_floatx("float32")
    model64.set_weights([w.astype(np.float64) for w in model32.get_weights()])
    want32 = model32(x, training=False).numpy().astype(np.float64)
    want64 = model64(x.astype(np.float64), training=False).numpy()
    assert want64.dtype == np.float64
    return float(np.abs(want32 - want64).max())


@pytest.fixture(scope="module")
def tolerance(mnv2) -> float:
    root, _, x, _ = mnv2
    spread = float32_spread(str(root / "mnv2.h5"), next(iter(x.values())))
    print(f"\nMobileNetV2 float32-vs-float64 spread {spread:.3g}, tolerance {3 * spread:.3g}")
    return 3 * spread


def convert_in_subprocess(src: str, out: Path, fmt: str) -> float:
    """Convert in a fresh interpreter; return that process's peak RSS in MiB."""
    converter_dir = Path(__file__).resolve().parents[2] / "converter"
    env = dict(os.environ, PYTHONPATH=str(converter_dir), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CONVERT, src, str(out), fmt],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, err[-2000:]
    return usage.ru_maxrss / 1024.0


@pytest.mark.parametrize("fmt", ["tf_saved_model", "keras"])
def test_mobilenet_v2_runs_in_tfjs(tfjs, mnv2, tolerance, tmp_path, fmt):
    root, path, x, want = mnv2
    src = path if fmt == "tf_saved_model" else str(root / "mnv2.h5")
    out = tmp_path / "mnv2"
    peak_mib = convert_in_subprocess(src, out, fmt)
    print(f"\nMobileNetV2 96x96 {fmt} -> graph: peak RSS {peak_mib:.0f} MiB")
    # TF itself costs ~650 MB; the conversion must not hold several weight copies.
    assert peak_mib < 1500
    model = json.loads((out / "model.json").read_text())
    ops = {n["op"] for n in model["modelTopology"]["node"]}
    # (the classifier bias is all zeros, so grappler drops it and leaves a plain MatMul)
    assert {"_FusedConv2D", "FusedDepthwiseConv2dNative"} <= ops
    assert not {op for op in ops if "BatchNorm" in op or op in ("Conv2D", "DepthwiseConv2dNative")}
    (name,) = model["signature"]["outputs"]
    (want_array,) = want.values()
    feed = list(x.values())
    for backend in ("cpu", "wasm"):
        (got,) = tfjs.predict(out, feed, kind="graph", backend=backend)
        print(f"{backend}: max |tfjs - TF| {float(np.abs(got - want_array).max()):.3g}")
        np.testing.assert_allclose(got, want_array, rtol=0, atol=tolerance, err_msg=backend)


def test_mobilenet_tolerance_catches_float16_weights(tfjs, mnv2, tolerance, tmp_path):
    """The derived tolerance still fails a real bug: every weight silently rounded to
    float16 (relative error <= 2^-11, what an unintended --quantize_float16 does)."""
    _, path, x, want = mnv2
    out = tmp_path / "mnv2"
    convert_in_subprocess(path, out, "tf_saved_model")
    model = json.loads((out / "model.json").read_text())
    (group,) = model["weightsManifest"]
    assert {w["dtype"] for w in group["weights"]} <= {"float32", "int32"}  # 4 bytes each
    blob = bytearray(b"".join((out / p).read_bytes() for p in group["paths"]))
    start = 0
    for weight in group["weights"]:
        end = start + 4 * int(np.prod(weight["shape"], dtype=np.int64))
        if weight["dtype"] == "float32":
            values = np.frombuffer(bytes(blob[start:end]), dtype="<f4")
            blob[start:end] = values.astype(np.float16).astype("<f4").tobytes()
        start = end
    assert start == len(blob)
    rounded = bytes(blob)
    offset = 0
    for p in group["paths"]:
        size = (out / p).stat().st_size
        (out / p).write_bytes(rounded[offset : offset + size])
        offset += size
    (got,) = tfjs.predict(out, list(x.values()), kind="graph", backend="cpu")
    diff = float(np.abs(got - next(iter(want.values()))).max())
    print(f"\nfloat16-rounded weights: max |tfjs - TF| {diff:.3g} vs tolerance {tolerance:.3g}")
    assert diff > tolerance
