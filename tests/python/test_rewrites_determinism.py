"""All rewrites in the converter's order give the same bytes in fresh processes.

Different ``PYTHONHASHSEED`` values change set and str-keyed dict iteration order, so
any order leaking from a set into the output would show up here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_rewrites_support import graph_of, random

CHAIN = """
import hashlib, sys
from tensorflow.core.framework import graph_pb2
from tfjsconv.graph import rewrites as r
g = graph_pb2.GraphDef()
g.ParseFromString(open(sys.argv[1], "rb").read())
for step in (r.fold_batch_norms, r.normalize_bias_add, r.fuse_prelu, r.fuse_depthwise_conv2d,
             r.fuse_prelu_into_fused_ops):
    g = step(g)
print(hashlib.sha256(g.SerializeToString(deterministic=True)).hexdigest())
"""


def _model(x):
    alpha = tf.constant(-np.linspace(0.1, 0.4, 6, dtype=np.float32))
    y = tf.nn.depthwise_conv2d(x, tf.constant(random([3, 3, 3, 2], 1)), [1, 1, 1, 1], "SAME")
    y = tf.raw_ops.FusedBatchNormV3(
        x=y,
        scale=tf.constant(random([6], 2) + 2.0),
        offset=tf.constant(random([6], 3)),
        mean=tf.constant(random([6], 4)),
        variance=tf.constant(random([6], 5) ** 2 + 1),
        is_training=False,
    )[0]
    y = tf.nn.relu6(y)
    z = tf.nn.conv2d(y, tf.constant(random([1, 1, 6, 6], 6)), 1, "VALID") + tf.constant(random([6], 7))
    return tf.nn.relu(z) + alpha * tf.nn.relu(-z)


@pytest.mark.slow  # two fresh TensorFlow imports
def test_same_bytes_across_processes(tmp_path: Path):
    graph_def = graph_of(_model, [1, 6, 6, 3])[0]
    src = tmp_path / "graph.pb"
    src.write_bytes(graph_def.SerializeToString(deterministic=True))
    converter = str(Path(__file__).resolve().parents[2] / "converter")
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=converter, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(
            [sys.executable, "-c", CHAIN, str(src)], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        digests.add(done.stdout.strip().splitlines()[-1])
    assert len(digests) == 1, digests
    assert digests != {hashlib.sha256(src.read_bytes()).hexdigest()}  # the chain did rewrite something
