"""Grappler in a child process with oneDNN off, for a caller whose TensorFlow has it on.

oneDNN is switched on or off once per process (``TF_ENABLE_ONEDNN_OPTS``, read when
TensorFlow first asks). With it on, grappler's remapper fuses patterns into ops and
activations tfjs 4.22 does not have (``_FusedConv2D`` with ``_FusedHardSwish``,
``_FusedBatchNormEx``...), so a conversion from the Python API in a process that
imported TensorFlow before ``tfjsconv`` would refuse models the CLI converts, or write
other bytes. ``optimize.run_grappler`` then hands the MetaGraphDef (weights above the
stash threshold already taken out) to this module in a fresh interpreter, which runs
the same grappler call with oneDNN off: the output is the CLI's, byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from tfjsconv.errors import ConversionError

_META = "meta.pb"
_CONFIG = "config.pb"
_OUT = "optimized.pb"


def cluster():
    """The reference's fake single-GPU cluster (grappler needs some device list)."""
    from tensorflow.core.protobuf import device_properties_pb2
    from tensorflow.python.grappler import cluster as gcluster

    device = device_properties_pb2.NamedDevice()
    device.name = "/GPU:0"
    device.properties.type = "GPU"
    device.properties.environment["architecture"] = "4"
    return gcluster.Cluster(devices=[device])


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs with oneDNN (``TF_ENABLE_ONEDNN_OPTS``,
    read once, when TensorFlow first asks). ``tf_env`` turns it off before TensorFlow
    is imported; a caller that imported TensorFlow first may have it on, and then the
    remapper emits oneDNN-only fusions (``_FusedHardSwish``, ``_FusedBatchNormEx``...)
    that tfjs cannot run, and other bytes."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def optimize_in_child(config, meta):
    """``tf_optimizer.OptimizeGraph(config, meta, cluster)`` run with oneDNN off; the
    optimized GraphDef."""
    from tensorflow.core.framework import graph_pb2

    with tempfile.TemporaryDirectory(prefix="tfjsconv-grappler-") as work:
        with open(os.path.join(work, _META), "wb") as f:
            f.write(meta.SerializeToString(deterministic=True))
        with open(os.path.join(work, _CONFIG), "wb") as f:
            f.write(config.SerializeToString(deterministic=True))
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.run(
            [sys.executable, "-m", __name__, work], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise ConversionError(
                "graph optimization (grappler, in a child process with oneDNN off) failed: "
                + (lines[-1] if lines else f"exit {proc.returncode}")
            )
        optimized = graph_pb2.GraphDef()
        with open(os.path.join(work, _OUT), "rb") as f:
            optimized.ParseFromString(f.read())
    return optimized


def _main(work: str) -> int:
    from tfjsconv import tf_env

    tf_env.import_tensorflow()
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    if onednn_enabled():
        raise SystemExit("oneDNN is still on in the grappler child process")
    meta = meta_graph_pb2.MetaGraphDef()
    with open(os.path.join(work, _META), "rb") as f:
        meta.ParseFromString(f.read())
    config = config_pb2.ConfigProto()
    with open(os.path.join(work, _CONFIG), "rb") as f:
        config.ParseFromString(f.read())
    optimized = tf_optimizer.OptimizeGraph(config, meta, cluster=cluster())
    with open(os.path.join(work, _OUT), "wb") as f:
        f.write(optimized.SerializeToString(deterministic=True))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
