#!/usr/bin/env python3
"""What the pre-load safety scan (``tfjsconv.graph.scan``) costs, next to a whole conversion.

Models: MobileNetV2 (tf_keras, 224x224, weights=None, Keras SavedModel: ~500 functions)
and the ~374 MB SavedModel of ``bench_large_model.py`` (four big MatMul variables), plus
that model frozen into a ~374 MB GraphDef.  Each row runs in a fresh process
(``common.measure``: wall time, peak RSS) after TensorFlow is imported:

* scan: parse ``saved_model.pb`` + ``scan_saved_model`` (op allowlist, path tracing,
  bounds, variables index vs data files), timed in-process around just those calls;
* full conversion with our CLI (``tf_saved_model -> tfjs_graph_model``), for scale;
* the reference converter the same way when ``REFERENCE_CONVERTER`` is set (it has no scan);
* frozen GraphDef: ``read_graph_def`` (streamed, one field at a time) vs
  ``ParseFromString(f.read())``, peak RSS of each (the scan reads frozen models this way).

    .venv/bin/python bench/bench_scan.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench_large_model  # noqa: E402
import common  # noqa: E402

PYTHON = common.PYTHON

_MOBILENET = r"""
import sys, tf_keras
tf_keras.utils.set_random_seed(0)
m = tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
m.save(sys.argv[1], save_format="tf", include_optimizer=False)
"""

_FREEZE = r"""
import sys, tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
m = tf.saved_model.load(sys.argv[1])
f = convert_variables_to_constants_v2(m.signatures["serving_default"])
with open(sys.argv[2], "wb") as out:
    out.write(f.graph.as_graph_def().SerializeToString())
"""

_SCAN = r"""
import os, sys, time
from tfjsconv import tf_env
tf_env.import_tensorflow()
from tfjsconv.graph import scan
from tfjsconv.proto_readers import read_saved_model_proto
start = time.perf_counter()
proto = read_saved_model_proto(sys.argv[1])
parsed = time.perf_counter()
for meta in proto.meta_graphs:
    scan.scan_saved_model(sys.argv[1], meta, allow_unsafe=False)
done = time.perf_counter()
nodes = sum(len(m.graph_def.node) + sum(len(f.node_def) for f in m.graph_def.library.function)
            for m in proto.meta_graphs)
print(f"{parsed - start:.3f} {done - parsed:.3f} {nodes}")
"""

_READ = r"""
import sys, time
from tfjsconv import tf_env
tf_env.import_tensorflow()
from tensorflow.core.framework import graph_pb2
from tfjsconv import proto_readers
start = time.perf_counter()
if sys.argv[2] == "streamed":
    g = proto_readers.read_graph_def(sys.argv[1])
else:
    g = graph_pb2.GraphDef()
    with open(sys.argv[1], "rb") as f:
        g.ParseFromString(f.read())
print(f"{time.perf_counter() - start:.3f} {len(g.node)}")
"""

_IDLE = "from tfjsconv import tf_env; tf_env.import_tensorflow(); import tfjsconv.graph.scan"


def _env() -> dict:
    return dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", PYTHONPATH=str(REPO / "converter")
    )


def _helper(code: str, *args: str) -> None:
    out = subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True, env=_env(), check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench_scan: helper failed:\n{out.stderr[-3000:]}")


def _measure(cmd: Sequence[str]) -> common.Result:
    result = common.measure(cmd, env=_env())
    if not result.ok:
        raise SystemExit(f"bench_scan: {' '.join(cmd[:3])} failed: {result.last_error_line()}")
    return result


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", help="keep models here (default: a temporary directory)")
    args = p.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_scan_")
    os.makedirs(work, exist_ok=True)
    try:
        mnv2 = os.path.join(work, "mobilenet_v2_sm")
        large = os.path.join(work, "large_sm")
        frozen = os.path.join(work, "large_frozen.pb")
        if not os.path.isdir(mnv2):
            _helper(_MOBILENET, mnv2)
        if not os.path.isdir(large):
            bench_large_model.build(large)
        if not os.path.isfile(frozen):
            _helper(_FREEZE, large, frozen)
        idle = _measure([PYTHON, "-c", _IDLE])
        rows: list[list[object]] = []
        reference = os.environ.get("REFERENCE_CONVERTER")
        for name, path in (("MobileNetV2 SavedModel", mnv2), ("374 MB SavedModel", large)):
            scanned = _measure([PYTHON, "-c", _SCAN, path])
            parse_s, scan_s, nodes = scanned.stdout.split()
            out = os.path.join(work, "out")
            shutil.rmtree(out, ignore_errors=True)
            conv = _measure(common.ours_saved_model_to_graph(path, out))
            ref = "-"
            if reference:
                shutil.rmtree(out, ignore_errors=True)
                r = common.measure(common.reference_saved_model_to_graph(reference, path, out), env=_env())
                ref = f"{r.wall_s:.1f} s" if r.ok else r.last_error_line()
            rows.append(
                [
                    name,
                    nodes,
                    f"{float(parse_s):.3f}",
                    f"{float(scan_s):.3f}",
                    f"{scanned.max_rss_mb - idle.max_rss_mb:.0f}",
                    f"{conv.wall_s:.1f}",
                    f"{100 * float(scan_s) / conv.wall_s:.1f}%",
                    ref,
                ]
            )
        print(f"idle TensorFlow + tfjsconv process: {idle.max_rss_mb:.0f} MB; load: {common.load_average()}")
        print(
            common.markdown_table(
                [
                    "model",
                    "nodes (graph + functions)",
                    "parse s",
                    "scan s",
                    "scan+parse RSS over idle MB",
                    "tfjsconv conversion s",
                    "scan / conversion",
                    "reference conversion (no scan)",
                ],
                rows,
            )
        )
        size = os.path.getsize(frozen)
        reads = []
        for mode in ("streamed", "ParseFromString(f.read())"):
            r = _measure([PYTHON, "-c", _READ, frozen, mode.split("(")[0]])
            reads.append(
                [
                    mode,
                    f"{float(r.stdout.split()[0]):.2f}",
                    f"{r.max_rss_mb - idle.max_rss_mb:.0f}",
                    f"{(r.max_rss_mb - idle.max_rss_mb) * 2**20 / size:.2f}",
                ]
            )
        print(f"\nfrozen GraphDef of the large model: {size / 2**20:.0f} MB")
        print(common.markdown_table(["read", "s", "peak RSS over idle MB", "copies of the file"], reads))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
