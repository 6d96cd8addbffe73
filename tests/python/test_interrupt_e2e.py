"""A real conversion killed mid-write leaves the previous output intact (issue: atomic outputs)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def big_h5(tmp_path_factory):
    """A ~16 MB Keras 2 model: with 4 KiB shards the writer needs a few seconds."""
    path = tmp_path_factory.mktemp("big") / "big.h5"
    script = (
        "import numpy as np, tf_keras as k;"
        "m = k.Sequential([k.layers.Dense(2000, input_shape=(2000,))]);"
        f"m.save({str(path)!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return path


def tree_digest(path):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, path).encode())
            h.update(open(full, "rb").read())
    return h.hexdigest()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killed_conversion_keeps_previous_output(tmp_path, big_h5, sig):
    out = tmp_path / "web_model"
    out.mkdir()
    (out / "model.json").write_text('{"previous": true}')
    before = tree_digest(out)
    cmd = [
        sys.executable,
        "-m",
        "tfjsconv.cli",
        "--input_format=keras",
        "--overwrite",
        "--weight_shard_size_bytes=4096",
        str(big_h5),
        str(out),
    ]
    # SIGINT back to its default in the child: a parent started in the background
    # (`cmd &`, nohup) ignores it, and children inherit that, so Python would too.
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    staging = []
    # Wait until shards are being written into the staging directory.
    while time.monotonic() < deadline and proc.poll() is None:
        staging = [n for n in os.listdir(tmp_path) if n.startswith(".tfjsconv-staging-")]
        if staging and len(os.listdir(tmp_path / staging[0])) > 20:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "conversion finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert tree_digest(out) == before
    if sig != signal.SIGKILL:
        assert "Traceback" not in err and "interrupted" in err
        assert sorted(os.listdir(tmp_path)) == ["web_model"]
    # Whatever a SIGKILL left behind is swept by the next conversion in the same place.
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(tmp_path)) == ["web_model"]
    assert (out / "model.json").read_text().startswith('{"format":"layers-model"')
