"""One definition of formats and option rules, one verdict in every tool.

tfjsconv/formats.py is the only place the formats, pairs, defaults, option rules and
action environment are written. These tests fail when a generated copy is stale, and
ask the CLI, the Pants plugin and the setuptools hook for their verdict on every
(input, output) pair x option: each must accept exactly what the converter accepts
and refuse the rest with the converter's own message. (The Bazel rule's analysis is
asked the same questions in tests/bazel/test_formats_bazel.py.)
"""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from checkout import load_script
from drift_cases import Case, cases

from tfjsconv import api, cli, formats
from tfjsconv.errors import ConversionError

ROOT = Path(__file__).resolve().parents[2]
CASES = cases()


def _generate_module():
    return load_script("tools/generate.py")


def test_generated_files_are_current():
    """formats.bzl, the Pants plugin's formats.py and the README tables."""
    stale = _generate_module().stale()
    assert stale == [], f"stale generated files {stale}: run python3 tools/generate.py"


def test_generated_starlark_tables_hold_the_converters_data():
    # formats.bzl holds only literals, which are valid Python as well.
    bzl: dict[str, object] = {}
    exec((ROOT / "rules" / "private" / "formats.bzl").read_text(), {}, bzl)
    assert bzl["SUPPORTED_PAIRS"] == [tuple(p) for p in api.supported_pairs()]
    assert bzl["DEFAULT_SHARD_SIZE_BYTES"] == 4 * 1024 * 1024
    assert bzl["ACTION_ENV"] == formats.ACTION_ENV
    assert [c[0] for c in bzl["CHECKS"]] == [c[0] for c in formats.CHECKS]  # type: ignore[attr-defined]


def test_every_supported_pair_has_a_converter_function():
    for (inp, out), target in formats.CONVERTERS.items():
        module, func = target.split(":")
        path = ROOT / "converter" / (module.replace(".", "/") + ".py")
        defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert func in defined, (inp, out, target)


# Verdicts worked out by hand from the reference converter's behaviour and this
# project's fixes, independent of the tables.
HAND_CHECKED = [
    ("keras", None, {}, None),
    ("tfjs_layers_model", None, {}, None),  # -> keras
    ("tfjs_layers_model", "tfjs_layers_model", {"quantize_uint8": ["*"]}, None),
    ("tf_saved_model", "tfjs_graph_model", {"control_flow_v2": True}, None),
    # The known drift: Bazel and Pants accepted this, the action then failed.
    (
        "tfjs_layers_model",
        "keras",
        {"quantize_uint8": ["*"]},
        "quantize_uint8 applies only to the tfjs_graph_model or tfjs_layers_model output format, not keras",
    ),
    (
        "tfjs_layers_model",
        "keras_keras",
        {"quantize_float16": ["*"]},
        "quantize_float16 applies only to the tfjs_graph_model or tfjs_layers_model output format, "
        "not keras_keras",
    ),
    ("tf_frozen_model", None, {}, 'output_node_names is required for input_format "tf_frozen_model"'),
    (
        "keras",
        None,
        {"weight_shard_size_bytes": 0},
        "weight_shard_size_bytes must be a positive integer, got 0",
    ),
    (
        "keras",
        None,
        {"signature_name": "x"},
        "signature_name applies only to the tf_hub or tf_saved_model input format, not keras",
    ),
    (
        "tf_saved_model",
        "tfjs_layers_model",
        {},
        "unsupported input_format/output_format pair: tf_saved_model -> tfjs_layers_model "
        "(from tf_saved_model the converter writes: tfjs_graph_model)",
    ),
]


@pytest.mark.parametrize("inp, out, values, expected", HAND_CHECKED)
def test_hand_checked_verdicts(inp: str, out: str | None, values: dict, expected: str | None):
    assert formats.problem(inp, out, values) == expected


def test_cases_cover_every_pair_and_option():
    pairs = {(c.input_format, c.output_format) for c in CASES}
    assert len(pairs) == len(formats.INPUT_FORMATS) * (len(formats.OUTPUT_FORMATS) + 1)
    assert {c.option for c in CASES} - {None} == set(formats.OPTIONS) - {"metadata"}
    accepted = sum(c.expected is None for c in CASES)
    assert 0 < accepted < len(CASES)  # both verdicts occur


def _cli_verdict(case: Case, tmp: Path) -> str | None:
    """The CLI's verdict: its checks run before it looks for the input."""
    missing = tmp / "no-such-model"
    err = io.StringIO()
    code = cli.main([*case.cli_flags(), str(missing), str(tmp / "out")], stdout=io.StringIO(), stderr=err)
    text = err.getvalue().strip()
    assert code != 0, case
    prefix = f"{cli.PROG}: error: "
    assert text.startswith(prefix), (case, text)
    message = text[len(prefix) :]
    return None if message == f"input path does not exist: {missing}" else message


def test_cli_agrees(tmp_path: Path):
    wrong = [(c, got) for c in CASES if (got := _cli_verdict(c, tmp_path)) != c.expected]
    assert wrong == [], wrong[:5]


def _pants_verdict(case: Case) -> str | None:
    from pants_tfjs.argv import InvalidTfjsModel, TfjsModelSpec, validate

    values = {k: tuple(v) if isinstance(v, list) else v for k, v in case.values.items()}
    spec = TfjsModelSpec(
        address="//drift:t", input_format=case.input_format, output_format=case.output_format, **values
    )
    try:
        validate(spec)
    except InvalidTfjsModel as exc:
        message = str(exc)
        assert message.startswith("//drift:t: "), message
        return message[len("//drift:t: ") :]
    return None


def test_pants_plugin_agrees():
    wrong = [(c, got) for c in CASES if (got := _pants_verdict(c)) != c.expected]
    assert wrong == [], wrong[:5]


def test_pants_plugin_runs_the_converters_check():
    """The plugin's copy of formats.py is the converter's, byte for byte after the header."""
    copy = (ROOT / "tools" / "pants_tfjs" / "pants_tfjs" / "formats.py").read_text()
    assert copy.endswith((ROOT / "converter" / "tfjsconv" / "formats.py").read_text())


def _setuptools_verdict(case: Case, project: Path) -> str | None:
    from tfjsconv_setuptools.config import model_jobs

    table = {"src": "m.h5", "input_format": case.input_format, **case.values}
    if case.output_format:
        table["output_format"] = case.output_format
    where = "[tool.tfjsconv.models.m]: "
    try:
        model_jobs(str(project), ["pkg"], {"tool": {"tfjsconv": {"models": {"m": table}}}})
    except ConversionError as exc:
        assert str(exc).startswith(where), exc
        return str(exc)[len(where) :]
    return None


def test_setuptools_hook_agrees(tmp_path: Path):
    (tmp_path / "m.h5").write_bytes(b"not read: the options are checked first")
    wrong = [(c, got) for c in CASES if (got := _setuptools_verdict(c, tmp_path)) != c.expected]
    assert wrong == [], wrong[:5]


def test_setuptools_hook_knows_every_option():
    from tfjsconv_setuptools import config

    # web_package: the hook's own key (a tfjs_web_package output), not a converter option.
    assert config._KNOWN_KEYS == {
        "src",
        "input_format",
        "output_format",
        "package",
        "web_package",
        *formats.OPTIONS,
    }
