"""The Bazel rule's analysis gives the converter's verdict on every pair x option.

One package of targets (tests/python/drift_cases.py: every input format x every
output format x each option at a non-default value, plus `tfjs_quantized_model`
for every pair) is analysed with `bazel build --nobuild --keep_going`; each target
must fail exactly when `tfjsconv.formats.problem` refuses it, with the converter's
message after the target label, and the CLI must agree on the quantized ones.

    .venv/bin/python -m pytest tests/bazel/test_formats_bazel.py -q
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from checkout import copy_checkout
from drift_cases import cases

from tfjsconv import cli, formats

REPO = Path(__file__).resolve().parents[2]
BAZEL = shutil.which("bazel")
pytestmark = pytest.mark.skipif(BAZEL is None, reason="bazel is not installed")


def _targets() -> list[tuple[str, str, str | None]]:
    """(name, BUILD text, expected message) for every target of the package."""
    out = []
    for case in cases():
        rule = f'tfjs_model(name = "{case.name}", src = "m.h5", {case.starlark_attrs()})'
        out.append((case.name, rule, case.expected))
    for inp in formats.INPUT_FORMATS:
        for outp in (None, *formats.OUTPUT_FORMATS):
            name = f"{inp}__{outp or 'default'}__quantized"
            attrs = f'input_format = "{inp}"' + (f', output_format = "{outp}"' if outp else "")
            rule = f'tfjs_quantized_model(name = "{name}", src = "m.h5", {attrs}, dtype = "uint8")'
            out.append((name, rule, formats.problem(inp, outp, {"quantize_uint8": True})))
    return out


def test_quantized_cases_match_the_cli(tmp_path):
    """A bare --quantize_uint8 is what tfjs_quantized_model(dtype = "uint8") passes."""
    for inp in formats.INPUT_FORMATS:
        for outp in (None, *formats.OUTPUT_FORMATS):
            argv = [f"--input_format={inp}", "--quantize_uint8", str(tmp_path / "nope"), str(tmp_path / "o")]
            if outp:
                argv.insert(1, f"--output_format={outp}")
            err = io.StringIO()
            cli.main(argv, stdout=io.StringIO(), stderr=err)
            message = err.getvalue().strip().split("error: ", 1)[1]
            expected = formats.problem(inp, outp, {"quantize_uint8": True})
            assert message == (expected or f"input path does not exist: {tmp_path / 'nope'}")


def _analysis_errors(stderr: str) -> dict[str, str]:
    """target name -> the message its fail() gave (Bazel 4: "Error in fail: <msg>")."""
    errors = {}
    for match in re.finditer(r"Error in fail: //drift:(\S+): (.*)", stderr):
        errors[match.group(1)] = match.group(2).strip()
    return errors


def test_rule_analysis_agrees_with_the_converter(tmp_path):
    workspace = tmp_path / "rules_tfjs"
    copy_checkout(workspace)
    pkg = workspace / "drift"
    pkg.mkdir()
    (pkg / "m.h5").write_bytes(b"never read: analysis only")
    targets = _targets()
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_quantized_model")\n\n'
        + "\n".join(rule for _, rule, _ in targets)
        + "\n"
    )
    output_base = tmp_path / "ob"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    try:
        proc = subprocess.run(
            [
                BAZEL,
                f"--output_base={output_base}",
                "--max_idle_secs=60",
                "build",
                "--nobuild",
                "--keep_going",
                "//drift:all",
            ],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        subprocess.run(
            [BAZEL, f"--output_base={output_base}", "shutdown"],
            cwd=workspace,
            capture_output=True,
            timeout=120,
        )
    errors = _analysis_errors(proc.stderr)
    refused = sum(expected is not None for _, _, expected in targets)
    assert len(errors) == refused, proc.stderr[-3000:]
    wrong = [
        (name, errors.get(name), expected) for name, _, expected in targets if errors.get(name) != expected
    ]
    assert wrong == [], wrong[:5]
