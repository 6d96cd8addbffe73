"""Byte-for-byte comparison with the reference converter's own ``write_weights`` (pip tensorflowjs 4.22).

Runs only when the separate reference venv exists (``bench/setup_reference.sh`` creates it
in ``.cache/reference-venv``); it is never a project dependency. The reference runs in a
subprocess, so this test process never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tfjsconv.weights import write_weights

REPO = Path(__file__).resolve().parents[2]
REF_PYTHON = REPO / ".cache" / "reference-venv" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REF_PYTHON.exists(), reason="reference venv missing (run bench/setup_reference.sh)"
    ),
]

_REF_SCRIPT = r"""
import json, os, sys
import numpy as np
from tensorflowjs import write_weights
root = sys.argv[1]
manifests = {}
for case in sorted(os.listdir(root)):
    with open(os.path.join(root, case, "spec.json")) as f:
        spec = json.load(f)
    data = np.load(os.path.join(root, case, "w.npz"), allow_pickle=False)
    groups = [[{"name": n, "data": data[key]} for key, n in group] for group in spec["groups"]]
    quant = {k: (True if v is True else list(v)) for k, v in (spec["quant"] or {}).items()} or None
    out = os.path.join(root, case, "ref")
    os.mkdir(out)
    manifests[case] = write_weights.write_weights(groups, out, shard_size_bytes=spec["shard"],
                                                  write_manifest=False, quantization_dtype_map=quant)
print(json.dumps(manifests))
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Run the reference writer once for every case: {case: (manifest, out_dir)}."""
    root = tmp_path_factory.mktemp("reference_weights")
    for case, (groups, shard, quant) in _cases().items():
        (root / case).mkdir()
        arrays = {f"a{i}_{j}": a for i, g in enumerate(groups) for j, (_, a) in enumerate(g)}
        np.savez(root / case / "w.npz", **arrays)
        spec = {
            "groups": [[[f"a{i}_{j}", n] for j, (n, _) in enumerate(g)] for i, g in enumerate(groups)],
            "shard": shard,
            "quant": quant,
        }
        (root / case / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [str(REF_PYTHON), "-c", _REF_SCRIPT, str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifests = json.loads(done.stdout.strip().splitlines()[-1])
    return {case: (manifests[case], root / case / "ref") for case in manifests}


def _cases():
    rng = np.random.default_rng(11)
    big = rng.normal(size=(64, 33)).astype(np.float32)
    return {
        "plain": (
            [
                [("k", big), ("b", np.zeros(33, np.float32)), ("i", np.arange(-3, 4, dtype=np.int32))],
                [("flag", np.array([True, False])), ("c", np.array([1 + 2j], np.complex64))],
            ],
            1000,
            None,
        ),
        "uint8": (
            [
                [
                    ("k", big),
                    ("b", np.zeros(33, np.float32)),
                    ("pos", rng.uniform(2, 3, 50).astype(np.float32)),
                    ("const", np.full(4, -0.7, np.float32)),
                ]
            ],
            777,
            {"uint8": True},
        ),
        "uint16": (
            [[("k", big), ("neg", -rng.uniform(1, 3, 40).astype(np.float32))]],
            4096,
            {"uint16": True},
        ),
        "float16": ([[("k", big), ("i", np.arange(5, dtype=np.int32))]], 300, {"float16": True}),
        "mixed": (
            [
                [
                    ("dense/kernel", big),
                    ("dense/bias", rng.normal(size=33).astype(np.float32)),
                    ("other", rng.normal(size=9).astype(np.float32)),
                ]
            ],
            512,
            {"uint8": ["dense/*"], "float16": True},
        ),
        "autoconv": ([[("f64", rng.normal(size=10)), ("i64", np.arange(4, dtype=np.int64))]], 4096, None),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_same_bytes_and_manifest_as_reference(case: str, reference, tmp_path: Path):
    groups, shard, quant = _cases()[case]
    ref_manifest, ref_dir = reference[case]
    our_quant = {k: (True if v is True else tuple(v)) for k, v in (quant or {}).items()}
    ours = write_weights(groups, str(tmp_path), shard_size_bytes=shard, quantization=our_quant)

    # Same manifest, including key order and the float reprs of min/scale.
    assert json.dumps(ours) == json.dumps(ref_manifest)
    assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(ref_dir))
    for name in sorted(os.listdir(ref_dir)):
        assert (tmp_path / name).read_bytes() == (ref_dir / name).read_bytes(), name
