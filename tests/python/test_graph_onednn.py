"""A Python-API conversion in a process whose TensorFlow has oneDNN on.

``tf_env`` turns oneDNN off before TensorFlow is imported, but a program that imports
TensorFlow before ``tfjsconv`` keeps it on (the default on x86 Linux); grappler's
remapper then fuses hard-swish into ``_FusedConv2D`` (``_FusedHardSwish``), a model tfjs
loads and cannot run. ``graph/grappler_child.py`` runs grappler with oneDNN off in a
child process instead: the output must be the CLI's, byte for byte, and run in tfjs.
The fused-kernel check (``ops.unsupported_ops``) is the net under it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from tfjsconv.graph import ops

REPO_ROOT = Path(__file__).resolve().parents[2]

# The child: TensorFlow imported first with oneDNN on, a hard-swish model built, saved,
# predicted and converted through the API.
_CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from tfjsconv import api
    from tfjsconv.graph.grappler_child import onednn_enabled
    from tfjsconv.options import ConversionOptions

    work = sys.argv[1]
    if not onednn_enabled():
        print("NO-ONEDNN")
        sys.exit(0)
    tf_keras.utils.set_random_seed(7)
    # Its hard-swish blocks are what the oneDNN remapper fuses (a lone conv + hard-swish
    # is not); smallest input it takes.
    model = tf_keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), weights=None, classes=2, classifier_activation=None
    )
    model.save(os.path.join(work, "model.h5"))
    api.convert(
        os.path.join(work, "model.h5"),
        os.path.join(work, "api"),
        ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
    )
    print("CONVERTED")
    """
)


def _node(text: str):
    from tensorflow.core.framework import node_def_pb2

    return text_format.Parse(text, node_def_pb2.NodeDef())


def _graph(*nodes):
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.node.extend(nodes)
    return graph


def _fused(op: str, *fused_ops: str):
    listed = " ".join(f's: "{f}"' for f in fused_ops)
    return _node(f'name: "n" op: "{op}" attr {{ key: "fused_ops" value {{ list {{ {listed} }} }} }}')


def test_fused_kernels_tfjs_cannot_run_are_listed():
    bad = [
        _fused("_FusedConv2D", "BiasAdd", "_FusedHardSwish"),
        _fused("_FusedMatMul", "BiasAdd", "Add", "Relu"),
        _fused("_FusedConv2D", "FusedBatchNorm", "Relu"),
        _fused("FusedDepthwiseConv2dNative", "BiasAdd", "Tanh"),
    ]
    good = [
        _fused("_FusedConv2D", "BiasAdd"),
        _fused("_FusedConv2D", "BiasAdd", "Relu6"),
        _fused("_FusedMatMul", "BiasAdd", "Prelu"),
        _fused("FusedDepthwiseConv2dNative", "NoOp", "Relu"),
    ]
    assert ops.unsupported_ops([_graph(*good)], strip_debug_ops=True) == []
    assert ops.unsupported_ops([_graph(*bad)], strip_debug_ops=True) == [
        "FusedDepthwiseConv2dNative[BiasAdd, Tanh]",
        "_FusedConv2D[BiasAdd, _FusedHardSwish]",
        "_FusedConv2D[FusedBatchNorm, Relu]",
        "_FusedMatMul[BiasAdd, Add, Relu]",
    ]


@pytest.mark.tfjs
@pytest.mark.slow
def test_api_with_onednn_on_writes_the_cli_bytes_and_runs_in_tfjs(tfjs, tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "converter"), env.get("PYTHONPATH", "")])
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)], env=env, capture_output=True, text=True, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]
    if "NO-ONEDNN" in child.stdout:
        pytest.skip("this TensorFlow build has no oneDNN here (not x86 Linux)")
    assert "CONVERTED" in child.stdout
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfjsconv.cli",
            "--input_format=keras",
            "--output_format=tfjs_graph_model",
            str(tmp_path / "model.h5"),
            str(tmp_path / "cli"),
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / "converter")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "api").iterdir())
    for name in files:
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    topology = json.loads((tmp_path / "api" / "model.json").read_text())["modelTopology"]
    fused = {
        tuple(base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"])
        for node in topology["node"]
        if "fused_ops" in node.get("attr", {})
    }
    assert ("BiasAdd",) in fused and not any("_FusedHardSwish" in f for f in fused), fused
    # The CLI's output of this architecture is compared with TF in the reach corpus
    # (docs/reach.md); here: tfjs runs the bytes the API wrote.
    x = np.random.default_rng(8).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    (got,) = tfjs.predict(tmp_path / "api", [x], kind="graph")
    assert got.shape == (1, 2) and np.all(np.isfinite(got))
