"""The Pants plugin's logic (fields -> converter argv), checked without Pants.

``pants_tfjs.argv`` must agree with the Bazel rule (same formats, defaults, flag
order) and with the converter itself (the argv it builds must convert). One test runs
real Pants 2.17 when ``TFJS_PANTS_BIN`` points at a ``pants`` executable (it needs a
Python 3.9 venv with pantsbuild.pants==2.17.1; see tools/pants_tfjs/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pants_tfjs import argv
from pants_tfjs.argv import InvalidTfjsModel, TfjsModelSpec

ROOT = Path(__file__).resolve().parents[2]


def spec(**kw) -> TfjsModelSpec:
    kw.setdefault("address", "models:m")
    kw.setdefault("input_format", "keras")
    return TfjsModelSpec(**kw)


# The plugin's tables are generated from tfjsconv/formats.py: tests/python/
# test_formats_drift.py checks the copy and every verdict against the converter's.


def test_minimal_keras_target():
    s = spec()
    assert argv.output_paths(s, "models", "m") == ("models/m", "models/m")
    assert argv.converter_args(s, "models", "models/m.h5", "models/m") == [
        "--input_format",
        "keras",
        "--output_format",
        "tfjs_layers_model",
        "--overwrite",
        "--quiet",
        "models/m.h5",
        "models/m",
    ]


def test_every_field_in_bazel_order():
    s = spec(
        input_format="tf_saved_model",
        weight_shard_size_bytes=1000,
        quantize_float16=("a*",),
        quantize_uint8=("b*", "c*"),
        metadata=(("z", "meta/z.json"), ("a", "a.json")),
        signature_name="serving_default",
        saved_model_tags=("serve", "gpu"),
        strip_debug_ops=False,
        control_flow_v2=True,
        skip_op_check=True,
    )
    assert argv.converter_args(s, "pkg", "pkg/sm", "pkg/m") == [
        "--input_format",
        "tf_saved_model",
        "--output_format",
        "tfjs_graph_model",
        "--weight_shard_size_bytes",
        "1000",
        "--quantize_float16=a*",
        "--quantize_uint8=b*,c*",
        "--metadata",
        "a:pkg/a.json,z:pkg/meta/z.json",
        "--signature_name",
        "serving_default",
        "--saved_model_tags",
        "serve,gpu",
        "--strip_debug_ops=false",
        "--control_flow_v2=true",
        "--use_structured_outputs_names=false",
        "--skip_op_check",
        "--overwrite",
        "--quiet",
        "pkg/sm",
        "pkg/m",
    ]


def test_non_directory_outputs_get_the_bazel_file_names():
    s = spec(input_format="tfjs_layers_model", output_format="keras")
    assert argv.output_paths(s, "", "back") == ("back", "back/model.h5")
    s = spec(input_format="tfjs_layers_model", output_format="keras_saved_model")
    assert argv.output_paths(s, "x", "sm") == ("x/sm", "x/sm/saved_model")


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"input_format": "onnx"}, 'unknown input_format "onnx"'),
        ({"output_format": "tflite"}, 'unknown output_format "tflite"'),
        (
            {"input_format": "tf_saved_model", "output_format": "keras"},
            "unsupported input_format/output_format pair",
        ),
        ({"input_format": "tf_frozen_model"}, "output_node_names is required"),
        ({"weight_shard_size_bytes": 0}, "positive integer"),
        (
            {"input_format": "tfjs_layers_model", "weight_shard_size_bytes": 10},
            "weight_shard_size_bytes applies only to the",
        ),
        ({"signature_name": "s"}, "signature_name applies only"),
        ({"control_flow_v2": True}, "control_flow_v2 applies only"),
        (
            {"input_format": "tf_saved_model", "split_weights_by_layer": True},
            "split_weights_by_layer applies only",
        ),
        ({"quantize_uint8": ("a,b",)}, "quantize_uint8 entries must be non-empty and contain no ','"),
        ({"metadata": (("a:b", "x.json"),)}, "metadata names"),
        (
            {
                "input_format": "tfjs_layers_model",
                "output_format": "keras_saved_model",
                "quantize_uint8": ("*",),
            },
            "quantize_uint8 applies only to the tfjs_graph_model or tfjs_layers_model output format",
        ),
        # The converter refuses this too (the plugin used to let it through).
        (
            {"input_format": "tfjs_layers_model", "output_format": "keras", "quantize_uint8": ("*",)},
            "quantize_uint8 applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
        ),
    ],
)
def test_invalid_fields_name_the_target(kw, needle):
    with pytest.raises(InvalidTfjsModel) as info:
        argv.converter_args(spec(**kw), "models", "in", "out")
    assert str(info.value).startswith("models:m: ") and needle in str(info.value)


def test_input_path_resolution():
    assert argv.input_path(spec(), "m", ["m/a.h5"]) == "m/a.h5"
    sm = spec(input_format="tf_saved_model")
    files = [
        "m/sm/saved_model.pb",
        "m/sm/variables/variables.index",
        "m/sm/variables/variables.data-00000-of-00001",
    ]
    assert argv.input_path(sm, "m", files) == "m/sm"
    layers = spec(input_format="tfjs_layers_model")
    assert argv.input_path(layers, "m", ["m/t/model.json", "m/t/group1-shard1of1.bin"]) == "m/t/model.json"
    # Metadata files are not model files.
    with_meta = spec(metadata=(("info", "info.json"),))
    assert argv.input_path(with_meta, "m", ["m/a.h5", "m/info.json"]) == "m/a.h5"
    assert argv.input_path(spec(src="b.h5"), "m", ["m/a.h5", "m/b.h5"]) == "m/b.h5"
    with pytest.raises(InvalidTfjsModel, match="single file for input_format keras"):
        argv.input_path(spec(), "m", ["m/a.h5", "m/b.h5"])
    with pytest.raises(InvalidTfjsModel, match="matches none of the target's sources"):
        argv.input_path(spec(src="c.h5"), "m", ["m/a.h5"])
    with pytest.raises(InvalidTfjsModel, match="exactly one saved_model.pb"):
        argv.input_path(sm, "m", ["m/a/saved_model.pb", "m/b/saved_model.pb"])


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory):
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(5, activation="relu", input_shape=(3,), name="d1"),
            tf_keras.layers.Dense(2, name="d2"),
        ]
    )
    path = tmp_path_factory.mktemp("pants_model") / "mlp.h5"
    model.save(path)
    return path


def test_web_package_args():
    """web_package_name/version -> tfjs_web_package on the model's output directory."""
    assert argv.web_package_args(spec(), "models", "m") is None
    web = argv.web_package_args(spec(web_package_name="@a/m", web_package_version="1.0.0"), "models", "m")
    assert web == (
        "models/m_web",
        ["models/m", "models/m_web", "--package_name", "@a/m", "--version", "1.0.0", "--quiet"],
    )
    with pytest.raises(InvalidTfjsModel, match="set both web_package_name and web_package_version"):
        argv.web_package_args(spec(web_package_name="m"), "models", "m")
    keras_out = spec(
        input_format="tfjs_layers_model",
        output_format="keras",
        web_package_name="m",
        web_package_version="1.0.0",
    )
    with pytest.raises(InvalidTfjsModel, match="needs a tfjs_\\* output_format, not keras"):
        argv.web_package_args(keras_out, "models", "m")


def _converter() -> str:
    exe = Path(sys.executable).with_name("tensorflowjs_converter")
    return str(exe) if exe.exists() else shutil.which("tensorflowjs_converter") or ""


def test_argv_drives_the_real_converter(keras_h5, tmp_path):
    """What the Pants process runs, run here in a sandbox-like working directory."""
    if not _converter():
        pytest.skip("tensorflowjs_converter is not installed")
    (tmp_path / "models").mkdir()
    shutil.copyfile(keras_h5, tmp_path / "models" / "mlp.h5")
    (tmp_path / "models" / "info.json").write_text('{"k": [1, 2]}')
    s = spec(
        address="models:mlp",
        weight_shard_size_bytes=40,
        quantize_uint8=("*kernel*",),
        metadata=(("info", "info.json"),),
    )
    files = ["models/mlp.h5", "models/info.json"]
    out_dir, out_path = argv.output_paths(s, "models", "mlp")
    cmd = [_converter(), *argv.converter_args(s, "models", argv.input_path(s, "models", files), out_path)]
    env = dict(argv.PROCESS_ENV, PATH=os.environ.get("PATH", ""))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --quiet
    model = json.loads((tmp_path / out_dir / "model.json").read_text())
    assert model["userDefinedMetadata"] == {"info": {"k": [1, 2]}}
    weights = {w["name"]: w for g in model["weightsManifest"] for w in g["weights"]}
    assert weights["d1/kernel"]["quantization"]["dtype"] == "uint8"
    assert "quantization" not in weights["d1/bias"]
    # uint8 kernels (15 + 10 bytes) + float32 biases (20 + 8 bytes) = 53 bytes -> 2 shards
    assert sorted(p.name for p in (tmp_path / out_dir).iterdir()) == [
        "group1-shard1of2.bin",
        "group1-shard2of2.bin",
        "model.json",
    ]


@pytest.mark.slow
def test_real_pants_codegen_is_cached(keras_h5, tmp_path):
    pants = os.environ.get("TFJS_PANTS_BIN")
    if not pants:
        pytest.skip("set TFJS_PANTS_BIN to a Pants 2.17 `pants` executable to run this test")
    if not _converter():
        pytest.skip("tensorflowjs_converter is not installed")
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    shutil.copyfile(keras_h5, repo / "models" / "mlp.h5")
    log = tmp_path / "conversions.log"
    # Pants' process cache (~/.cache/pants) outlives this test, and pytest reuses tmp paths
    # across sessions (pytest-1/...), so a fixed wrapper path gave a cache hit from an earlier
    # run on the first export. The wrapper path is argv[0], part of the cache key: make it new.
    wrapper = repo / f"convert-{uuid.uuid4().hex}.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {_converter()} "$@"\n')
    wrapper.chmod(0o755)
    (repo / "pants.toml").write_text(
        textwrap.dedent(f"""\
        [GLOBAL]
        pants_version = "2.17.1"
        pythonpath = ["{ROOT / "tools" / "pants_tfjs"}"]
        backend_packages = ["pants_tfjs"]
        pantsd = false
        local_execution_root_dir = "{tmp_path / "sandboxes"}"

        [tfjs]
        converter = "{wrapper}"
        web_packager = "{Path(_converter()).with_name("tfjs_web_package")}"
        """)
    )
    (repo / "models" / "BUILD").write_text(
        'tfjs_model(name="mlp", sources=["mlp.h5"], input_format="keras", weight_shard_size_bytes=64,\n'
        '           web_package_name="@acme/mlp", web_package_version="1.0.0")\n'
    )

    def export() -> list:
        shutil.rmtree(repo / "dist", ignore_errors=True)
        proc = subprocess.run(
            [pants, "export-codegen", "models:mlp"], cwd=repo, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        conversions = [line for line in log.read_text().splitlines() if "--input_format" in line]
        return conversions

    assert len(export()) == 1
    files = sorted(p.name for p in (repo / "dist" / "codegen" / "models" / "mlp").iterdir())
    assert files[-1] == "model.json" and files[0].startswith("group1-shard1of")
    # The web package of the converted files, beside them (tfjs_web_package's layout).
    web = repo / "dist" / "codegen" / "models" / "mlp_web"
    assert json.loads((web / "package.json").read_text())["name"] == "@acme/mlp"
    assert (web / "index.d.ts").is_file() and (web / "integrity.json").is_file()
    assert len(export()) == 1  # second run: served from Pants' cache, no conversion
    (repo / "models" / "BUILD").write_text(
        'tfjs_model(name="mlp", sources=["mlp.h5"], input_format="keras", weight_shard_size_bytes=32)\n'
    )
    assert len(export()) == 2  # a changed field re-converts
