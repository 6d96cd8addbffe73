"""Same input -> byte-identical output across processes, hash seeds and absolute paths.

Graph models are covered by test_graph_convert.py::test_byte_identical_across_processes;
this covers the layers paths and checks that no absolute path leaks into any output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import keras_models as km
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


def digest(path):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, path).encode() + b"\0")
            h.update(open(full, "rb").read())
    return h.hexdigest()


def run_cli(args, cwd, seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    res = subprocess.run(
        [sys.executable, "-m", "tfjsconv.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


CASES = {
    "keras2_h5_layers": ("cnn", ["--input_format=keras"]),
    "keras2_h5_split_uint8": (
        "cnn",
        [
            "--input_format=keras",
            "--split_weights_by_layer",
            "--quantize_uint8=*kernel*",
            "--quantize_float16",
        ],
    ),
    "keras3_keras_layers": ("k3_cnn_keras", ["--input_format=keras_keras"]),
    "keras3_h5_layers_sharded": ("k3_cnn_h5", ["--input_format=keras", "--weight_shard_size_bytes=1000"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_two_paths_same_bytes(models, tmp_path, case):
    model, flags = CASES[case]
    outputs = []
    for i, seed in enumerate((0, 12345)):
        # Different absolute locations of both the input and the output.
        where = tmp_path / f"checkout_{i}" / ("deeper" * i)
        where.mkdir(parents=True)
        src = where / os.path.basename(models[model])
        shutil.copy(models[model], src)
        run_cli([*flags, src.name, "web_model"], cwd=where, seed=seed)
        outputs.append(where / "web_model")
        for name in os.listdir(where / "web_model"):
            data = (where / "web_model" / name).read_bytes()
            assert str(tmp_path).encode() not in data, f"absolute path in {name}"
    assert digest(outputs[0]) == digest(outputs[1])


def test_layers_to_layers_requantize_is_reproducible(models, tmp_path):
    base = tmp_path / "base"
    run_cli(["--input_format=keras", models["mlp"], str(base)], cwd=REPO, seed=1)
    outs = []
    for seed in (2, 3):
        out = tmp_path / f"q{seed}"
        run_cli(
            [
                "--input_format=tfjs_layers_model",
                "--output_format=tfjs_layers_model",
                "--quantize_uint16",
                str(base / "model.json"),
                str(out),
            ],
            cwd=REPO,
            seed=seed,
        )
        outs.append(digest(out))
    assert outs[0] == outs[1]


def test_keras_output_stderr_is_clean(models, tmp_path):
    """tf_keras's 'HDF5 is legacy' / 'metrics not built' advice stays off stderr."""
    layers = tmp_path / "layers"
    run_cli(["--input_format=keras", models["cnn"], str(layers)], cwd=REPO, seed=0)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfjsconv.cli",
            "--input_format=tfjs_layers_model",
            "--output_format=keras",
            str(layers / "model.json"),
            str(tmp_path / "m.h5"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
