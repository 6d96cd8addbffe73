"""The setuptools hook: models declared in pyproject.toml ship converted inside wheels.

Builds a sample package offline with ``pip wheel --no-build-isolation --no-deps`` (the
hook and tfjsconv come from the source tree through PYTHONPATH), installs the wheel
into a fresh venv, and checks the shipped model against Keras's own weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tfjsconv.errors import ConversionError
from tfjsconv_setuptools.config import model_jobs

ROOT = Path(__file__).resolve().parents[2]
HOOK_DIR = ROOT / "tools" / "setuptools_tfjs"

EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can carry


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "converter"), str(HOOK_DIR)])
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.update(extra)
    return env


PYPROJECT = textwrap.dedent(
    """\
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "sample-tfjs-pkg"
    version = "0.1.0"

    [tool.setuptools]
    packages = ["sample_pkg"]

    [tool.setuptools.cmdclass]
    build_py = "tfjsconv_setuptools.build_py"

    [tool.tfjsconv.models.mlp]
    src = "models/mlp.h5"
    input_format = "keras"
    output_format = "tfjs_layers_model"
    weight_shard_size_bytes = 100
    metadata = { info = "models/info.json" }

    [tool.tfjsconv.models.mlp_uint8]
    src = "models/mlp.h5"
    input_format = "keras"
    quantize_uint8 = ["*kernel*"]
    web_package = { name = "@sample/mlp-uint8", version = "0.1.0" }
    """
)


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    """A tiny tf_keras MLP saved as HDF5, and its weights by name."""
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(7, activation="relu", input_shape=(4,), name="d1"),
            tf_keras.layers.Dense(2, name="d2"),
        ]
    )
    path = tmp_path_factory.mktemp("keras") / "mlp.h5"
    model.save(path)
    weights = {w.name.split(":")[0]: w.numpy() for w in model.weights}
    return path, weights


def make_project(root: Path, h5: Path) -> Path:
    (root / "sample_pkg").mkdir(parents=True)
    (root / "sample_pkg" / "__init__.py").write_text('"""Sample package shipping tfjs models."""\n')
    (root / "models").mkdir()
    shutil.copyfile(h5, root / "models" / "mlp.h5")
    (root / "models" / "info.json").write_text('{"labels": ["a", "b"]}')
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def build_wheel(project: Path, out: Path) -> Path:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-w",
            str(out),
            str(project),
        ],
        env=_env(SOURCE_DATE_EPOCH=EPOCH),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_ships_converted_models_reproducibly(keras_model, tmp_path):
    h5, weights = keras_model
    # Two independent checkouts, so the second build cannot reuse the first's build/.
    wheel_a = build_wheel(make_project(tmp_path / "a", h5), tmp_path / "dist_a")
    wheel_b = build_wheel(make_project(tmp_path / "b", h5), tmp_path / "dist_b")
    assert wheel_a.name == wheel_b.name == "sample_tfjs_pkg-0.1.0-py3-none-any.whl"
    assert wheel_a.read_bytes() == wheel_b.read_bytes()

    with zipfile.ZipFile(wheel_a) as zf:
        names = zf.namelist()
        record = zf.read("sample_tfjs_pkg-0.1.0.dist-info/RECORD").decode()
    models = sorted(n for n in names if "/tfjs_models/" in n)
    assert "sample_pkg/tfjs_models/mlp/model.json" in models
    assert "sample_pkg/tfjs_models/mlp_uint8/model.json" in models
    # (4*7 + 7 + 7*2 + 2) float32 = 204 bytes, cut into 100-byte shards.
    assert [n for n in models if n.startswith("sample_pkg/tfjs_models/mlp/group")] == [
        f"sample_pkg/tfjs_models/mlp/group1-shard{i}of3.bin" for i in (1, 2, 3)
    ]
    assert all(n in record for n in models)
    assert not any(n.startswith("models/") for n in names)  # sources stay out
    # web_package: the npm package of mlp_uint8 (tfjs_web_package's files) beside it.
    web = sorted(n for n in names if n.startswith("sample_pkg/tfjs_web/"))
    assert {"package.json", "index.js", "index.d.ts", "integrity.json", "model.json"} <= {
        n.rsplit("/", 1)[1] for n in web
    }
    assert all(n.startswith("sample_pkg/tfjs_web/mlp_uint8/") and n in record for n in web)
    with zipfile.ZipFile(wheel_a) as zf:
        assert (
            json.loads(zf.read("sample_pkg/tfjs_web/mlp_uint8/package.json"))["name"] == "@sample/mlp-uint8"
        )

    # Install into a fresh venv; numpy/h5py/tfjsconv come from the project venv via .pth.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    site = subprocess.run(
        [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "project_venv.pth").write_text(
        "\n".join([sysconfig.get_paths()["purelib"], str(ROOT / "converter"), str(HOOK_DIR)]) + "\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(vpy),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel_a),
        ],
        check=True,
        capture_output=True,
        env=_env(),
    )
    script = textwrap.dedent(
        """\
        import json, sys
        import numpy as np
        import sample_pkg
        from tfjsconv_setuptools import model_path
        from tfjsconv.model_json import load_tfjs_model
        out = {}
        for name in ("mlp", "mlp_uint8"):
            path = model_path("sample_pkg", name)
            model_json, weights = load_tfjs_model(path)
            out[name] = {"path": path, "format": model_json["format"],
                         "meta": model_json.get("userDefinedMetadata"),
                         "weights": {n: np.asarray(a).tolist() for n, a in weights}}
        try:
            model_path("sample_pkg", "nope")
        except FileNotFoundError as exc:
            out["missing"] = str(exc)
        json.dump(out, sys.stdout)
        """
    )
    proc = subprocess.run(
        [str(vpy), "-c", script], capture_output=True, text=True, env=_env(PYTHONPATH=""), cwd=str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert got["mlp"]["path"].startswith(site)
    assert got["mlp"]["format"] == "layers-model"
    assert got["mlp"]["meta"] == {"info": {"labels": ["a", "b"]}}
    assert "no tfjs model named 'nope'" in got["missing"]
    assert sorted(got["mlp"]["weights"]) == sorted(weights)
    for name, expected in weights.items():
        np.testing.assert_array_equal(np.array(got["mlp"]["weights"][name], np.float32), expected)
        # uint8 kernels: within half a quantization step of the Keras values.
        q = np.array(got["mlp_uint8"]["weights"][name], np.float32)
        step = (expected.max() - expected.min()) / 255 if "kernel" in name else 0
        assert np.abs(q - expected).max() <= step / 2 + 1e-6


def _jobs(tmp_path: Path, table: str, packages=("pkg",)):
    (tmp_path / "m.h5").write_bytes(b"")
    (tmp_path / "pyproject.toml").write_text("[tool.tfjsconv.models.m]\n" + table)
    return model_jobs(str(tmp_path), list(packages))


def test_config_maps_to_conversion_options(tmp_path):
    (tmp_path / "meta.json").write_text('{"k": 1}')
    (job,) = _jobs(
        tmp_path,
        'src = "m.h5"\ninput_format = "keras"\nquantize_float16 = true\n'
        'quantize_uint8 = "a*,b*"\nweight_shard_size_bytes = 10\nmetadata = {x = "meta.json"}\n'
        "skip_op_check = true\n",
    )
    assert job.package == "pkg" and job.name == "m"
    assert job.options.quantize_float16 is True
    assert job.options.quantize_uint8 == ("a*", "b*")
    assert job.options.weight_shard_size_bytes == 10
    assert job.options.metadata == (("x", {"k": 1}),)
    assert job.options.skip_op_check is True
    assert job.source_files == ("m.h5", "meta.json")
    assert job.output_dir("/b") == os.path.join("/b", "pkg", "tfjs_models", "m")
    assert job.web is None
    (job,) = _jobs(
        tmp_path, 'src = "m.h5"\ninput_format = "keras"\nweb_package = {name = "m", version = "1.0.0"}\n'
    )
    assert job.web == ("m", "1.0.0")
    assert job.web_dir("/b") == os.path.join("/b", "pkg", "tfjs_web", "m")


@pytest.mark.parametrize(
    "table, needle",
    [
        ('input_format = "keras"\n', "'src'"),
        ('src = "../m.h5"\ninput_format = "keras"\n', "relative path inside the project"),
        ('src = "nope.h5"\ninput_format = "keras"\n', "src does not exist: nope.h5"),
        ('src = "m.h5"\ninput_format = "pickle"\n', 'unknown input_format "pickle"'),
        ('src = "m.h5"\ninput_format = "keras"\nquantise_uint8 = true\n', "unknown key(s) quantise_uint8"),
        ('src = "m.h5"\ninput_format = "keras"\nweight_shard_size_bytes = 0\n', "positive integer"),
        ('src = "m.h5"\ninput_format = "keras"\npackage = "other"\n', "'other' is not one of"),
        (
            'src = "m.h5"\ninput_format = "keras"\nmetadata = {a = "x.json"}\n',
            "cannot read metadata file x.json",
        ),
        ('src = "m.h5"\ninput_format = "keras"\nweb_package = "m"\n', "'web_package' must be a table"),
        (
            'src = "m.h5"\ninput_format = "keras"\nweb_package = {name = "M M", version = "1.0.0"}\n',
            "web_package: package name 'M M' is not a valid npm name",
        ),
        (
            'src = "m.h5"\ninput_format = "keras"\noutput_format = "keras"\n'
            'web_package = {name = "m", version = "1.0.0"}\n',
            "needs a tfjs_* output_format",
        ),
    ],
)
def test_config_errors_name_the_table_and_key(tmp_path, table, needle):
    with pytest.raises(ConversionError) as info:
        _jobs(tmp_path, table)
    message = str(info.value)
    assert "[tool.tfjsconv.models.m]" in message and needle in message and "\n" not in message


def test_package_must_be_named_when_ambiguous(tmp_path):
    with pytest.raises(ConversionError, match="set 'package'"):
        _jobs(tmp_path, 'src = "m.h5"\ninput_format = "keras"\n', packages=("a", "b"))


@pytest.mark.slow
def test_sdist_carries_model_sources_and_rebuilds_the_same_wheel(keras_model, tmp_path):
    import tarfile

    h5, _weights = keras_model
    project = make_project(tmp_path / "p", h5)
    sdist_dir = tmp_path / "sdist"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))",
            str(sdist_dir),
        ],
        cwd=project,
        env=_env(SOURCE_DATE_EPOCH=EPOCH),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sdist = sdist_dir / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        tf.extractall(tmp_path / "unpacked")
    # get_source_files() put the model and its metadata into the sdist (no MANIFEST.in).
    assert "sample-tfjs-pkg-0.1.0/models/mlp.h5" in names
    assert "sample-tfjs-pkg-0.1.0/models/info.json" in names
    from_sdist = build_wheel(tmp_path / "unpacked" / "sample-tfjs-pkg-0.1.0", tmp_path / "w1")
    from_tree = build_wheel(project, tmp_path / "w2")
    assert from_sdist.read_bytes() == from_tree.read_bytes()


def test_build_fails_with_a_one_line_error_for_a_bad_model(tmp_path):
    project = tmp_path / "bad"
    (project / "sample_pkg").mkdir(parents=True)
    (project / "sample_pkg" / "__init__.py").write_text("")
    (project / "models").mkdir()
    (project / "models" / "mlp.h5").write_bytes(b"not an hdf5 file")
    (project / "pyproject.toml").write_text(
        PYPROJECT.split("[tool.tfjsconv.models.mlp_uint8]")[0].replace(
            'metadata = { info = "models/info.json" }\n', ""
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(project),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "tfjsconv: model 'mlp':" in output
    assert not list((tmp_path / "dist").glob("*.whl")) if (tmp_path / "dist").exists() else True


@pytest.mark.slow
def test_isolated_build_with_local_wheels(keras_model, tmp_path):
    """``pip wheel`` *with* build isolation: the isolated build env gets setuptools,
    numpy and h5py from the package index and tfjsconv-setuptools plus
    rules-tfjs-converter from local wheels (--find-links), since neither is on PyPI."""
    h5, _weights = keras_model
    wheels = tmp_path / "wheels"
    # Build both wheels from copies, so no build/ or egg-info lands in the source tree.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    conv = tmp_path / "conv_src"
    shutil.copytree(ROOT / "converter", conv / "converter", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, conv / name)
    hook = tmp_path / "hook_src"
    shutil.copytree(HOOK_DIR, hook, ignore=ignore)
    for src in (conv, hook):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(wheels),
                str(src),
            ],
            check=True,
            capture_output=True,
            env=_env(),
        )
    project = make_project(tmp_path / "proj", h5)
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace(
            'requires = ["setuptools>=61"]', 'requires = ["setuptools>=61", "tfjsconv-setuptools==0.1.0"]'
        )
    )
    env = _env(SOURCE_DATE_EPOCH=EPOCH)
    del env["PYTHONPATH"]
    del env["PIP_NO_INDEX"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--find-links",
            str(wheels),
            "-w",
            str(tmp_path / "dist"),
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("sample_tfjs_pkg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "sample_pkg/tfjs_models/mlp/model.json" in names
    assert "sample_pkg/tfjs_models/mlp_uint8/model.json" in names
