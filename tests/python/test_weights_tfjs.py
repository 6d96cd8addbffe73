"""Shards written by ``write_weights`` decoded by the real tfjs 4.22 runtime (``tf.io.decodeWeights``).

Checks that tfjs reads every dtype, quantization and shard layout we write, and that our
``read_weights`` dequantizes to exactly the float32 values tfjs computes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tfjsconv.weights import read_weights, write_weights

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "tests" / "js" / "node_modules"

_DECODE_JS = r"""
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');
const [manifestPath, dir] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
(async () => {
  const out = {};
  for (const group of manifest) {
    const all = Buffer.concat(group.paths.map(p => fs.readFileSync(path.join(dir, p))));
    const ab = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
    const tensors = tf.io.decodeWeights(ab, group.weights);
    for (const [name, t] of Object.entries(tensors)) {
      let data = await t.data();
      if (t.dtype === 'string') {
        data = data.map(b => Buffer.from(b).toString('hex'));
      } else {
        // raw bytes of the typed array: exact, no float printing involved
        data = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
      }
      out[name] = {dtype: t.dtype, shape: t.shape, data};
    }
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(String(e)); process.exit(1); });
"""


def _decode_in_tfjs(manifest, model_dir: Path, tmp_path: Path) -> dict:
    if shutil.which("node") is None or not (NODE_MODULES / "@tensorflow" / "tfjs").is_dir():
        if os.environ.get("CI"):
            pytest.fail("node and tests/js/node_modules are required under CI")
        pytest.skip("tfjs runtime (node + tests/js/node_modules) not available")
    script = tmp_path / "decode.js"
    script.write_text(_DECODE_JS)
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    done = subprocess.run(
        ["node", str(script), str(manifest_path), str(model_dir)],
        capture_output=True,
        text=True,
        env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _tfjs_array(entry: dict) -> np.ndarray:
    dtype = {"float32": "<f4", "int32": "<i4", "bool": "u1", "complex64": "<f4"}[entry["dtype"]]
    flat = np.frombuffer(bytes.fromhex(entry["data"]), dtype=dtype)
    if entry["dtype"] == "complex64":
        flat = flat[0::2] + 1j * flat[1::2]
    if entry["dtype"] == "bool":
        flat = flat != 0
    return flat.reshape(entry["shape"])


def _weights():
    rng = np.random.default_rng(3)
    return [
        [
            ("dense/kernel", rng.normal(size=(7, 5)).astype(np.float32)),
            ("dense/bias", np.zeros(5, np.float32)),
            ("const", np.full((2, 2), 0.3, np.float32)),
            ("positive", rng.uniform(1.0, 2.0, size=33).astype(np.float32)),
            ("ids", np.array([[1, -2], [2**31 - 1, -(2**31)]], np.int64)),
        ],
        [],
        [
            ("mask", np.array([True, False, True])),
            ("cplx", np.array([1 - 2j, 0.25j], np.complex128)),
            ("vocab", np.array([["héllo", ""], ["😀", "x y"]])),
            ("scalar", np.float64(-1.25)),
        ],
    ]


@pytest.mark.tfjs
@pytest.mark.parametrize(
    "quant",
    [
        None,
        {"uint8": True},
        {"uint16": True},
        {"float16": True},
        {"uint8": ("dense/*",), "float16": ("positive", "const")},
    ],
)
def test_tfjs_decodes_what_we_write(tmp_path: Path, quant):
    out = tmp_path / "model"
    out.mkdir()
    groups = _weights()
    manifest = write_weights(groups, str(out), shard_size_bytes=37, quantization=quant)
    decoded = _decode_in_tfjs(manifest, out, tmp_path)
    ours = dict(read_weights(manifest, str(out)))
    originals = {name: np.asarray(a) for group in groups for name, a in group}
    assert set(decoded) == set(originals)
    for name, original in originals.items():
        entry = decoded[name]
        if entry["dtype"] == "string":
            assert [bytes.fromhex(h).decode() for h in entry["data"]] == original.reshape(-1).tolist()
            continue
        theirs = _tfjs_array(entry)
        assert theirs.shape == original.shape, name
        # our reader == the tfjs runtime, bit for bit (incl. dequantization rounding)
        assert theirs.dtype == ours[name].dtype, name
        assert theirs.tobytes() == np.ascontiguousarray(ours[name]).tobytes(), name
        if original.dtype.kind == "f" and quant:
            np.testing.assert_allclose(theirs, original, atol=0.01, rtol=0.002)
        else:
            np.testing.assert_array_equal(theirs, original.astype(theirs.dtype))
    if quant and "uint8" in quant:
        assert (_tfjs_array(decoded["dense/bias"]) == 0).all()  # zero stays exact
