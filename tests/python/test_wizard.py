"""tensorflowjs_wizard: input detection, argument generation, and the real prompts in a pty."""

from __future__ import annotations

import json
import os
import shlex
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tfjsconv import cli
from tfjsconv.wizard import detect, main, prompts, render
from tfjsconv.wizard.detect import WizardError
from tfjsconv.wizard.render import Answers

REPO = Path(__file__).resolve().parents[2]
W = np.arange(8, dtype=np.float32).reshape(4, 2) / 8.0


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny real models of every kind the wizard detects, built once per module."""
    import tensorflow as tf
    import tf_keras

    root = tmp_path_factory.mktemp("wizard_models")
    tf_keras.utils.set_random_seed(3)
    seq = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="d")])
    seq.save(str(root / "tfk.h5"))
    seq.save(str(root / "keras_sm"), save_format="tf")

    class Mod(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(W)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def matmul(self, x):
            return {"y": tf.matmul(x, self.w)}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def plus(self, x):
            return {"z": tf.matmul(x, self.w) + 1.0}

    mod = Mod()
    tf.saved_model.save(
        mod, str(root / "sm"), signatures={"serving_default": mod.matmul, "plus_one": mod.plus}
    )

    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    for name, op, inputs in (
        ("x", "Placeholder", []),
        ("w", "Const", []),
        ("y", "MatMul", ["x", "w"]),
        ("out", "Identity", ["y"]),
        ("side", "NoOp", ["^out"]),
    ):
        node = graph.node.add(name=name, op=op)
        node.input.extend(inputs)
    (root / "frozen.pb").write_bytes(graph.SerializeToString())

    (root / "layers").mkdir()
    (root / "layers" / "model.json").write_text(json.dumps({"format": "layers-model"}))
    (root / "graph.json").write_text(json.dumps({"format": "graph-model"}))
    with zipfile.ZipFile(root / "m.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", "")
    with zipfile.ZipFile(root / "other.zip", "w") as z:
        z.writestr("readme.txt", "hi")
    (root / "notes.txt").write_text("not a model")
    return root


# ---------------------------------------------------------------------------- detection


def test_detects_url_as_tf_hub():
    det = detect.detect("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5")
    assert det.input_format == "tf_hub"


def test_detects_tf_keras_h5_with_version(models):
    import tf_keras

    det = detect.detect(str(models / "tfk.h5"))
    assert det.input_format == "keras"
    assert det.keras_version == tf_keras.__version__
    assert "Keras 2" in det.note


def test_detects_keras3_h5(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "k3.h5"
    with h5py.File(path, "w") as f:  # what Keras 3's legacy h5 writer stamps on the file
        f.attrs["keras_version"] = "3.15.1"
        f.attrs["backend"] = "tensorflow"
    det = detect.detect(str(path))
    assert (det.input_format, det.keras_version) == ("keras", "3.15.1")
    assert "Keras 3" in det.note


def test_detects_keras_v3_zip_but_not_any_zip(models):
    assert detect.detect(str(models / "m.keras")).input_format == "keras_keras"
    assert detect.detect(str(models / "other.zip")).input_format is None


def test_saved_model_lists_tags_and_signatures(models):
    det = detect.detect(str(models / "sm"))
    assert det.input_format == "tf_saved_model"
    (meta,) = det.meta_graphs
    assert meta.tags == ("serve",)
    assert [s.name for s in meta.signatures] == ["plus_one", "serving_default"]
    plus = meta.signatures[0]
    assert plus.inputs == ("x: float[-1, 4]",)
    assert plus.outputs == ("z: float[-1, 2]",)


def test_saved_model_pb_file_means_its_directory(models):
    det = detect.detect(str(models / "sm" / "saved_model.pb"))
    assert (det.input_format, det.path) == ("tf_saved_model", str(models / "sm"))


def test_keras_saved_model_is_told_apart(models):
    assert detect.detect(str(models / "keras_sm")).input_format == "keras_saved_model"


def test_layers_model_json_dir_and_graph_model_refused(models):
    assert detect.detect(str(models / "layers")).input_format == "tfjs_layers_model"
    assert detect.detect(str(models / "layers" / "model.json")).input_format == "tfjs_layers_model"
    with pytest.raises(WizardError, match="already a TensorFlow.js graph model"):
        detect.detect(str(models / "graph.json"))


def test_frozen_graph_offers_unconsumed_nodes(models):
    det = detect.detect(str(models / "frozen.pb"))
    assert det.input_format == "tf_frozen_model"
    assert det.output_node_candidates == ("out",)


def test_unknown_and_missing_inputs(models, tmp_path):
    assert detect.detect(str(models / "notes.txt")).input_format is None
    with pytest.raises(WizardError, match="input path does not exist"):
        detect.detect(str(tmp_path / "nope.h5"))


# ---------------------------------------------------------------------------- arguments


def test_minimal_argv_has_only_the_format_and_paths():
    a = Answers(input_path="m.h5", input_format="keras", output_path="out", output_format="tfjs_layers_model")
    assert render.build_argv(a) == ["--input_format=keras", "m.h5", "out"]


FULL = Answers(
    input_path="my models/sm",
    input_format="tf_saved_model",
    output_path="web/My Model",
    output_format="tfjs_graph_model",
    saved_model_tags=("serve", "gpu"),
    signature_name="plus_one",
    quantize_dtype="uint8",
    quantize_patterns=("dense*", "conv*"),
    weight_shard_size_bytes=1024,
    skip_op_check=True,
    strip_debug_ops=False,
    control_flow_v2=True,
    metadata=(("meta", "m.json"),),
    overwrite=True,
)


def test_full_argv_flags_first_then_paths():
    assert render.build_argv(FULL) == [
        "--input_format=tf_saved_model",
        "--saved_model_tags=serve,gpu",
        "--signature_name=plus_one",
        "--quantize_uint8=dense*,conv*",
        "--weight_shard_size_bytes=1024",
        "--skip_op_check",
        "--strip_debug_ops=false",
        "--control_flow_v2=true",
        "--metadata=meta:m.json",
        "--overwrite",
        "my models/sm",
        "web/My Model",
    ]


def test_command_is_shell_quoted_and_round_trips():
    command = render.format_command(render.build_argv(FULL))
    assert command.startswith("tensorflowjs_converter --input_format=tf_saved_model ")
    assert "'--quantize_uint8=dense*,conv*'" in command
    assert command.endswith(" 'my models/sm' 'web/My Model'")
    assert shlex.split(command)[1:] == render.build_argv(FULL)


def test_argv_means_the_same_to_the_converter_cli(tmp_path):
    (tmp_path / "m.json").write_text('{"k": 1}')
    a = Answers(**{**FULL.__dict__, "metadata": (("meta", str(tmp_path / "m.json")),)})
    opts = cli.options_from_args(cli.parse_args(render.build_argv(a)))
    assert opts.input_format == "tf_saved_model"
    assert opts.resolved_output_format == "tfjs_graph_model"
    assert opts.saved_model_tags == ("serve", "gpu")
    assert opts.signature_name == "plus_one"
    assert opts.quantize_uint8 == ("dense*", "conv*")
    assert opts.weight_shard_size_bytes == 1024
    assert (opts.skip_op_check, opts.strip_debug_ops, opts.control_flow_v2) == (True, False, True)
    assert opts.metadata == (("meta", {"k": 1}),)
    assert opts.overwrite is True


def test_layers_only_and_graph_only_flags_are_not_mixed():
    a = Answers(
        input_path="m.h5",
        input_format="keras",
        output_path="o",
        output_format="tfjs_graph_model",
        split_weights_by_layer=False,
        control_flow_v2=True,
    )
    assert "--output_format=tfjs_graph_model" in render.build_argv(a)
    b = Answers(
        input_path="m.h5",
        input_format="keras",
        output_path="o",
        output_format="tfjs_layers_model",
        split_weights_by_layer=True,
        control_flow_v2=True,
    )
    assert render.build_argv(b) == ["--input_format=keras", "--split_weights_by_layer", "m.h5", "o"]


def test_bazel_target_text():
    assert render.bazel_target(FULL) == (
        'load("@rules_tfjs//rules:defs.bzl", "tfjs_model")\n'
        "\n"
        "tfjs_model(\n"
        '    name = "my_model",\n'
        '    src = "my models/sm",\n'
        '    input_format = "tf_saved_model",\n'
        '    saved_model_tags = ["serve", "gpu"],\n'
        '    signature_name = "plus_one",\n'
        '    quantize_uint8 = ["dense*", "conv*"],\n'
        "    weight_shard_size_bytes = 1024,\n"
        "    skip_op_check = True,\n"
        "    strip_debug_ops = False,\n"
        "    control_flow_v2 = True,\n"
        '    metadata = {"meta": "m.json"},\n'
        ")"
    )


def test_bazel_target_paths_are_package_relative_with_filegroup_for_dirs(models):
    a = Answers(
        input_path=str(models / "sm"),
        input_format="tf_saved_model",
        output_path=str(models / "web"),
        metadata=(("info", str(models / "m.json")),),
    )
    assert render.bazel_target(a, package_dir=str(models)) == (
        'load("@rules_tfjs//rules:defs.bzl", "tfjs_model")\n'
        "\n"
        "filegroup(\n"
        '    name = "web_src",\n'
        '    srcs = glob(["sm/**"]),\n'
        ")\n"
        "\n"
        "tfjs_model(\n"
        '    name = "web",\n'
        '    src = ":web_src",\n'
        '    input_format = "tf_saved_model",\n'
        '    metadata = {"info": "m.json"},\n'
        ")"
    )


def test_bazel_target_flags_paths_outside_the_package(models, tmp_path):
    a = Answers(input_path=str(models / "tfk.h5"), input_format="keras", output_path="o")
    text = render.bazel_target(a, package_dir=str(tmp_path))
    assert text.splitlines()[2].startswith("# NOTE: src must live in this package")
    assert f'    src = "{models / "tfk.h5"}",' in text


def test_target_names():
    assert render.target_name("web/My Model") == "my_model"
    assert render.target_name("out/model.h5") == "model"
    assert render.target_name("/") == "model"


def test_metadata_answer_parsing():
    assert prompts.parse_metadata_answer(" a:x.json, b:C:\\m.json ,") == (
        ("a", "x.json"),
        ("b", "C:\\m.json"),
    )
    with pytest.raises(WizardError, match="name:path.json"):
        prompts.parse_metadata_answer("justapath.json")


def test_usage_errors(capsys):
    assert main.main(["--bogus"]) == 2
    assert "usage: tensorflowjs_wizard [--dryrun]" in capsys.readouterr().err


def test_refuses_to_run_without_a_terminal(capsys):
    # pytest's stdin is not a tty, like a build action's or CI's.
    assert main.main([]) == 2
    assert "needs a terminal" in capsys.readouterr().err


# ---------------------------------------------------------------------------- real prompts


pexpect = pytest.importorskip("pexpect")
pytest.importorskip("questionary")

DOWN = "\x1b[B"
SPACE = " "
ENTER = "\r"


class Wizard:
    """The real ``tensorflowjs_wizard`` in a pseudo-terminal, answered prompt by prompt."""

    def __init__(self, *args: str, cwd: Path):
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO / "converter"),
            PROMPT_TOOLKIT_NO_CPR="1",
            TERM="xterm",
            COLUMNS="200",
        )
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "tfjsconv.wizard", *args],
            cwd=str(cwd),
            env=env,
            encoding="utf-8",
            timeout=120,
            dimensions=(60, 220),
        )
        self.transcript: list = []
        self.child.logfile_read = self

    # pexpect logfile protocol
    def write(self, data: str) -> None:
        self.transcript.append(data)

    def flush(self) -> None:
        pass

    def answer(self, prompt: str, keys: str) -> None:
        self.child.expect_exact(prompt)
        self.child.send(keys)

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    @property
    def text(self) -> str:
        import re

        raw = "".join(self.transcript)
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r", "")


def _printed_command(text: str) -> list:
    line = text.split("Converter command:\n", 1)[1].strip().splitlines()[0]
    return shlex.split(line)


@pytest.mark.slow
@pytest.mark.tfjs
def test_pty_h5_to_uint8_layers_model_runs_the_converter(models, tmp_path, tfjs):
    import tf_keras

    out = tmp_path / "web model"
    w = Wizard(cwd=tmp_path)
    w.answer("model to convert:", str(models / "tfk.h5") + ENTER)
    w.answer("Input format:", ENTER)  # the detected one is first and selected
    w.answer("Output format:", ENTER)  # tfjs_layers_model (the default)
    w.answer("Quantize weights?", DOWN + DOWN + ENTER)  # none, float16, [uint8]
    w.answer("patterns", ENTER)  # '*'
    w.answer("shard size", ENTER)
    w.answer("Split weights", "n")
    w.answer("metadata", ENTER)
    w.answer("Output directory:", str(out) + ENTER)
    assert w.finish() == 0, w.text
    text = w.text
    assert "Detected: HDF5 model saved by Keras 2" in text
    assert _printed_command(text) == [
        "tensorflowjs_converter",
        "--input_format=keras",
        "--quantize_uint8=*",
        str(models / "tfk.h5"),
        str(out),
    ]
    assert 'quantize_uint8 = ["*"],' in text and 'name = "web_model",' in text
    assert "Quantization: uint8" in text  # the converter's summary

    manifest = json.loads((out / "model.json").read_text())["weightsManifest"]
    assert {w_["quantization"]["dtype"] for g in manifest for w_ in g["weights"]} == {"uint8"}
    x = np.random.RandomState(0).uniform(-1, 1, (2, 4)).astype(np.float32)
    expected = tf_keras.models.load_model(str(models / "tfk.h5")).predict(x, verbose=0)
    (got,) = tfjs.predict(out, [x], kind="layers")
    kernel = tf_keras.models.load_model(str(models / "tfk.h5")).get_weights()[0]
    step = (kernel.max() - kernel.min()) / 255  # one uint8 step; 4 inputs with |x| <= 1
    np.testing.assert_allclose(got, expected, atol=4 * step + 1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.tfjs
def test_pty_saved_model_signature_choice(models, tmp_path, tfjs):
    out = tmp_path / "plus"
    w = Wizard(cwd=tmp_path)
    w.answer("model to convert:", str(models / "sm") + ENTER)
    w.answer("Input format:", ENTER)
    w.child.expect_exact("Signature:")
    # Both signatures are listed with their tensors; plus_one sorts first.
    w.child.expect_exact("serving_default")
    w.child.send(ENTER)  # the pointer starts on serving_default
    w.answer("Quantize weights?", ENTER)
    w.answer("shard size", ENTER)
    w.answer("Graph options", ENTER)
    w.answer("metadata", ENTER)
    w.answer("Output directory:", str(out) + ENTER)
    assert w.finish() == 0, w.text
    text = w.text
    assert "plus_one  (x: float[-1, 4] -> z: float[-1, 2])" in text
    assert "serving_default  (x: float[-1, 4] -> y: float[-1, 2])" in text
    assert _printed_command(text) == [
        "tensorflowjs_converter",
        "--input_format=tf_saved_model",
        str(models / "sm"),
        str(out),
    ]
    x = np.random.RandomState(1).uniform(-1, 1, (3, 4)).astype(np.float32)
    (y,) = tfjs.predict(out, [x], kind="graph")
    np.testing.assert_allclose(y, x @ W, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_pty_pick_other_signature_and_confirm_overwrite_dryrun(models, tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    w = Wizard("--dryrun", cwd=tmp_path)
    w.answer("model to convert:", str(models / "sm") + ENTER)
    w.answer("Input format:", ENTER)
    w.answer("Signature:", "\x1b[A" + ENTER)  # up from serving_default to plus_one
    w.answer("Quantize weights?", DOWN + ENTER)  # float16
    w.answer("patterns", "\x7f" + "*kernel*" + ENTER)  # replace the default '*'
    w.answer("shard size", "\x7f" * 7 + "1000" + ENTER)
    w.answer("Graph options", DOWN + DOWN + SPACE + ENTER)  # control flow v2
    w.answer("metadata", ENTER)
    w.answer("Output directory:", str(out) + ENTER)
    w.answer("Overwrite it?", "y")
    assert w.finish() == 0, w.text
    assert _printed_command(w.text) == [
        "tensorflowjs_converter",
        "--input_format=tf_saved_model",
        "--signature_name=plus_one",
        "--quantize_float16=*kernel*",
        "--weight_shard_size_bytes=1000",
        "--control_flow_v2=true",
        "--overwrite",
        str(models / "sm"),
        str(out),
    ]
    assert "--dryrun: not converting." in w.text
    assert (out / "keep.txt").read_text() == "x"


@pytest.mark.slow
def test_pty_frozen_graph_output_nodes_dryrun(models, tmp_path):
    w = Wizard("--dryrun", cwd=tmp_path)
    w.answer("model to convert:", str(models / "frozen.pb") + ENTER)
    w.answer("Input format:", ENTER)
    w.answer("Output nodes:", SPACE + ENTER)
    w.answer("Quantize weights?", ENTER)
    w.answer("shard size", ENTER)
    w.answer("Graph options", ENTER)
    w.answer("metadata", ENTER)
    w.answer("Output directory:", "o" + ENTER)
    assert w.finish() == 0, w.text
    assert _printed_command(w.text) == [
        "tensorflowjs_converter",
        "--input_format=tf_frozen_model",
        "--output_node_names=out",
        str(models / "frozen.pb"),
        "o",
    ]


@pytest.mark.slow
def test_pty_ctrl_c_cancels(tmp_path):
    w = Wizard(cwd=tmp_path)
    w.child.expect_exact("model to convert:")
    w.child.sendcontrol("c")
    assert w.finish() == 130
    assert "cancelled; nothing was converted" in w.text


@pytest.mark.slow
def test_pty_layers_model_to_keras_file_in_existing_dir_dryrun(models, tmp_path):
    (tmp_path / "outdir").mkdir()
    w = Wizard("--dryrun", cwd=tmp_path)
    w.answer("model to convert:", str(models / "layers") + ENTER)
    w.answer("Input format:", ENTER)
    w.answer("Output format:", ENTER)  # keras (HDF5), the converter's default for this input
    w.answer("Output file:", "outdir" + ENTER)
    assert w.finish() == 0, w.text
    assert _printed_command(w.text) == [
        "tensorflowjs_converter",
        "--input_format=tfjs_layers_model",
        str(models / "layers" / "model.json"),
        os.path.join("outdir", "model.h5"),
    ]


@pytest.mark.slow
def test_pty_graph_model_input_is_a_one_line_error(models, tmp_path):
    w = Wizard(cwd=tmp_path)
    w.answer("model to convert:", str(models / "graph.json") + ENTER)
    assert w.finish() == 1
    assert "error: " in w.text and "already a TensorFlow.js graph model" in w.text
