"""Hostile models through the other entry points: setuptools hook, Pants plugin, Bazel rule.

The CLI rows (every input format) are in test_bad_inputs.py (HOSTILE_ROWS). Here the
same corpus (tests/python/hostile_models.py) goes through what users wire into their
builds; each case must fail with the scanner's one-line refusal, build nothing, and
never create the model's sentinel file. Bazel runs both strategies: the persistent
worker (sandboxed workers, the .bazelrc default) and one linux-sandbox process per action.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from checkout import copy_checkout

ROOT = Path(__file__).resolve().parents[2]
PYTHON = (
    str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)
BAZEL = shutil.which("bazel")
for p in (ROOT / "tools" / "pants_tfjs",):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

REFUSAL = "refusing to load"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile_corpus")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT / "converter"))
    subprocess.run(
        [PYTHON, str(ROOT / "tests" / "python" / "hostile_models.py"), str(root)],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )
    models = {k: Path(v) for k, v in json.loads((root / "models.json").read_text()).items()}
    models["_root"] = root
    return models


def _sentinels(hostile: dict[str, Path]) -> list:
    return sorted(os.listdir(hostile["_root"] / "sentinels"))


@pytest.mark.slow
def test_setuptools_hook_refuses_a_hostile_saved_model(hostile, tmp_path):
    project = tmp_path / "proj"
    (project / "sample_pkg").mkdir(parents=True)
    (project / "sample_pkg" / "__init__.py").write_text("")
    shutil.copytree(hostile["sm_init_write_file"], project / "models" / "evil")
    (project / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evil-pkg"
        version = "0.1.0"

        [tool.setuptools]
        packages = ["sample_pkg"]

        [tool.setuptools.cmdclass]
        build_py = "tfjsconv_setuptools.build_py"

        [tool.tfjsconv.models.evil]
        src = "models/evil"
        input_format = "tf_saved_model"
        """)
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "converter"), str(ROOT / "tools" / "setuptools_tfjs")]),
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "tfjsconv: model 'evil':" in output and REFUSAL in output and "WriteFile" in output, output[-3000:]
    assert not list((tmp_path / "dist").glob("*.whl")) if (tmp_path / "dist").exists() else True
    assert _sentinels(hostile) == []


@pytest.mark.slow
def test_pants_plugin_command_refuses_a_hostile_frozen_model(hostile, tmp_path):
    """The exact command the Pants plugin runs (argv.converter_args, its process env)."""
    from pants_tfjs import argv
    from pants_tfjs.argv import TfjsModelSpec

    exe = Path(PYTHON).with_name("tensorflowjs_converter")
    if not exe.exists():
        pytest.skip("tensorflowjs_converter is not installed in the venv")
    (tmp_path / "models").mkdir()
    shutil.copyfile(hostile["frozen_write_file"], tmp_path / "models" / "write.pb")
    s = TfjsModelSpec(address="models:evil", input_format="tf_frozen_model", output_node_names=("out",))
    out_dir, out_path = argv.output_paths(s, "models", "evil")
    cmd = [
        str(exe),
        *argv.converter_args(s, "models", argv.input_path(s, "models", ["models/write.pb"]), out_path),
    ]
    env = dict(argv.PROCESS_ENV, PATH=os.environ.get("PATH", ""))
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tensorflowjs_converter: error:")]
    assert len(errors) == 1 and REFUSAL in errors[0] and "WriteFile (in the graph)" in errors[0], proc.stderr
    assert not (tmp_path / out_dir).exists()
    assert _sentinels(hostile) == []


_BUILD = """\
load("//rules:defs.bzl", "tfjs_model")

filegroup(name = "sm_files", srcs = glob(["sm/**"]))

tfjs_model(name = "sm", src = ":sm_files", input_format = "tf_saved_model")

tfjs_model(name = "frozen", src = "write.pb", input_format = "tf_frozen_model", output_node_names = ["out"])

tfjs_model(name = "h5", src = "bomb.h5", input_format = "keras")
"""

_EXPECTED = {
    "sm": "WriteFile (in __inference__initializer_",
    "frozen": "WriteFile (in the graph)",
    "h5": "datasets declare more bytes than the file holds",
}


@pytest.mark.slow
@pytest.mark.skipif(BAZEL is None, reason="bazel is not installed")
def test_bazel_rule_refuses_hostile_models_with_and_without_workers(hostile, tmp_path):
    ws = tmp_path / "ws"
    copy_checkout(ws)
    pkg = ws / "hostile"
    shutil.copytree(hostile["sm_init_write_file"], pkg / "sm")
    shutil.copyfile(hostile["frozen_write_file"], pkg / "write.pb")
    shutil.copyfile(hostile["h5_dataset_bomb"], pkg / "bomb.h5")
    (pkg / "BUILD.bazel").write_text(_BUILD)
    output_base = tmp_path / "ob"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    try:
        for strategy in ("worker", "linux-sandbox"):
            for name, needle in sorted(_EXPECTED.items()):
                proc = subprocess.run(
                    [
                        BAZEL,
                        f"--output_base={output_base}",
                        "--max_idle_secs=300",
                        "build",
                        f"--strategy=TfjsConvert={strategy}",
                        f"//hostile:{name}",
                    ],
                    cwd=ws,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    check=False,
                )
                assert proc.returncode != 0, (strategy, name)
                assert needle in proc.stderr, (strategy, name, proc.stderr[-3000:])
                assert not (ws / "bazel-bin" / "hostile" / name / "model.json").exists()
                assert _sentinels(hostile) == [], (strategy, name)
    finally:
        subprocess.run(
            [BAZEL, f"--output_base={output_base}", "shutdown"],
            cwd=ws,
            capture_output=True,
            timeout=120,
            check=False,
        )


@pytest.mark.slow
def test_the_corpus_is_real_allow_unsafe_lets_the_model_write(hostile, tmp_path):
    """The control: with --allow_unsafe_deserialization TensorFlow loads the model and its
    initializer writes the sentinel (so the checks above can fail). Runs last: it removes
    the sentinel it provokes."""
    sentinel = hostile["_root"] / "sentinels" / "sm_init_write_file"
    model = tmp_path / "sm"
    shutil.copytree(hostile["sm_init_write_file"], model)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "converter"), TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run(
            [
                PYTHON,
                "-m",
                "tfjsconv.cli",
                "--input_format=tf_saved_model",
                "--allow_unsafe_deserialization",
                str(model),
                str(tmp_path / "out"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert (
            "tensorflowjs_converter: warning: --allow_unsafe_deserialization: not checking the ops of "
            f"SavedModel {model}"
        ) in proc.stderr
        assert sentinel.exists(), proc.stderr
        # The converted model could not hold WriteFile anyway: the tfjs op check still refuses it.
        assert (
            proc.returncode == 1
            and "Unsupported Ops in the model before optimization: WriteFile" in proc.stderr
        )
    finally:
        if sentinel.exists():
            sentinel.unlink()
