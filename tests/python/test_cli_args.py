"""The CLI's flag handling, including the reference converter's bugs it fixes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from tfjsconv import cli
from tfjsconv.errors import ConversionError, UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_bare_quantize_flag_does_not_swallow_input_path():
    # The reference parsed this as quantize_uint8='in.h5' and failed with a missing path.
    args = cli.parse_args(["--quantize_uint8", "in.h5", "out"])
    assert (args.input_path, args.output_path, args.quantize_uint8) == ("in.h5", "out", True)


def test_quantize_flag_with_patterns_keeps_them():
    args = cli.parse_args(["--quantize_uint8", "dense*,conv/*", "--quantize_float16", "in", "out"])
    assert args.input_path == "in" and args.output_path == "out"
    opts = cli.options_from_args(args)
    assert opts.quantize_uint8 == ("dense*", "conv/*")
    assert opts.quantize_float16 is True


def test_quantize_flag_between_positionals():
    args = cli.parse_args(["in", "--quantize_float16", "out"])
    assert (args.input_path, args.output_path, args.quantize_float16) == ("in", "out", True)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("False", False),
        ("false", False),
        ("0", False),
        ("", False),
        ("True", True),
        ("1", True),
        ("yes", True),
    ],
)
def test_bool_flags_parse_their_value(text, expected):
    # The reference's type=bool made "--strip_debug_ops=False" mean True.
    args = cli.parse_args([f"--strip_debug_ops={text}", "a", "b"])
    assert args.strip_debug_ops is expected


def test_bool_flag_rejects_garbage():
    code, _, err = run_main(["--control_flow_v2=maybe", "a", "b"])
    assert code == 2
    assert "expected true or false" in err and len(err.strip().splitlines()) == 1


def test_paths_with_spaces_survive(tmp_path):
    args = cli.parse_args(["--input_format=keras", "my dir/model file.h5", "out dir"])
    assert args.input_path == "my dir/model file.h5" and args.output_path == "out dir"


def test_metadata_splits_on_first_colon_only(tmp_path):
    path = tmp_path / "C:weird" / "meta.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"labels": ["cat", "dog"]}))
    entries = cli.parse_metadata(f"labels:{path}")
    assert entries == (("labels", {"labels": ["cat", "dog"]}),)


def test_metadata_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConversionError, match="not valid JSON"):
        cli.parse_metadata(f"m:{bad}")
    with pytest.raises(ConversionError, match="metadata file not found"):
        cli.parse_metadata(f"m:{tmp_path / 'missing.json'}")
    with pytest.raises(UsageError, match="name:path.json"):
        cli.parse_metadata("just-a-path.json")
    ok = tmp_path / "ok.json"
    ok.write_text("1")
    with pytest.raises(UsageError, match="given twice"):
        cli.parse_metadata(f"m:{ok},m:{ok}")


def test_quantization_bytes_is_deprecated_and_exclusive():
    opts = cli.options_from_args(cli.parse_args(["--quantization_bytes", "2", "a", "b"]))
    assert opts.quantize_uint16 is True and opts.quantize_uint8 is None
    with pytest.raises(UsageError, match="cannot be used with"):
        cli.options_from_args(cli.parse_args(["--quantization_bytes", "1", "--quantize_uint8", "a", "b"]))


def test_two_fallthrough_quantizers_are_refused():
    code, _, err = run_main(["--quantize_uint8=", "--quantize_float16", "--input_format=keras", "a", "b"])
    # '--quantize_uint8=' carries an empty value: that is a fallthrough too.
    assert code == 2 and "more than one quantization flag" in err


def test_flagfile_expansion(tmp_path):
    flags = tmp_path / "flags.txt"
    flags.write_text("--input_format=keras\n--quantize_uint8\nin path.h5\nout\n")
    args = cli.parse_args([f"@{flags}"])
    assert args.input_format == "keras"
    assert (args.input_path, args.output_path, args.quantize_uint8) == ("in path.h5", "out", True)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--input_format=nope", "a", "b"], "invalid choice: 'nope'"),
        (["--input_format=keras"], "missing input_path"),
        (["--input_format=keras", "a"], "missing output_path"),
        (
            ["--input_format=keras_keras", "--output_format=keras", "a", "b"],
            "unsupported input_format/output_format pair: keras_keras -> keras",
        ),
        (["--input_format=keras", "--weight_shard_size_bytes=0", "a", "b"], "must be a positive integer"),
        (["--input_format=keras", "--weight_shard_size_bytes=-5", "a", "b"], "must be a positive integer"),
        (["--input_format=keras", "--weight_shard_size_bytes=x", "a", "b"], "expected an integer"),
        (
            [
                "--input_format=tfjs_layers_model",
                "--output_format=keras",
                "--weight_shard_size_bytes=9",
                "a",
                "b",
            ],
            "weight_shard_size_bytes applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
        ),
        (
            ["--input_format=tf_frozen_model", "a", "b"],
            'output_node_names is required for input_format "tf_frozen_model"',
        ),
        (
            ["--input_format=keras", "--signature_name=x", "a", "b"],
            "signature_name applies only to the tf_hub or tf_saved_model input format, not keras",
        ),
        (
            ["--input_format=keras", "--control_flow_v2", "a", "b"],
            "control_flow_v2 applies only to the tfjs_graph_model output format, not tfjs_layers_model",
        ),
        (
            [
                "--input_format=keras",
                "--split_weights_by_layer",
                "--output_format=tfjs_graph_model",
                "a",
                "b",
            ],
            "split_weights_by_layer applies only to the tfjs_layers_model output format, not tfjs_graph_model",
        ),
        # The reference silently ignored quantization when writing Keras files.
        (
            ["--input_format=tfjs_layers_model", "--output_format=keras", "--quantize_uint8", "a", "b"],
            "quantize_uint8 applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
        ),
        (
            [
                "--input_format=tfjs_layers_model",
                "--output_format=keras_saved_model",
                "--quantize_float16=*",
                "a",
                "b",
            ],
            "quantize_float16 applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras_saved_model",
        ),
    ],
)
def test_usage_errors_are_one_line(argv, needle):
    code, out, err = run_main(argv)
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_missing_input_is_a_one_line_error(tmp_path):
    code, _, err = run_main(["--input_format=keras", str(tmp_path / "nope.h5"), str(tmp_path / "out")])
    assert code == 1 and "input path does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_version_does_not_import_tensorflow():
    code = (
        "import sys, io; from tfjsconv import cli; out = io.StringIO();"
        "rc = cli.main(['--version'], stdout=out); print(out.getvalue());"
        "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF'); sys.exit(rc)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.join(REPO, "converter")},
    )
    assert res.returncode == 0
    assert "tensorflowjs 4.22.0" in res.stdout and "NO_TF" in res.stdout


def test_help_exits_zero():
    code, out, _ = run_main(["--help"])
    assert code == 0 and "--quantize_uint8" in out
