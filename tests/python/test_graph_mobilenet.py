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

import numpy as np
import pytest

import graph_models as gm

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


def convert_in_subprocess(src: str, out: Path, fmt: str) -> float:
    """Convert in a fresh interpreter; return that process's peak RSS in MiB."""
    converter_dir = Path(__file__).resolve().parents[2] / "converter"
    env = dict(os.environ, PYTHONPATH=str(converter_dir), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-c", _CONVERT, src, str(out), fmt], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, err[-2000:]
    return usage.ru_maxrss / 1024.0


@pytest.mark.parametrize("fmt", ["tf_saved_model", "keras"])
def test_mobilenet_v2_runs_in_tfjs(tfjs, mnv2, tmp_path, fmt):
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
        np.testing.assert_allclose(got, want_array, rtol=1e-5, atol=1e-5, err_msg=backend)
