"""The Python API examples in docs/python-api.md run as written (README links there)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, "docs", "python-api.md")


def example_blocks() -> list:
    text = open(DOC, encoding="utf-8").read()
    return re.findall(r"<!-- api-example -->\n```python\n(.*?)```", text, flags=re.S)


def test_doc_has_examples_for_every_conversion_function():
    code = "\n".join(example_blocks())
    for fn in (
        "save_keras_model",
        "convert_keras",
        "convert_tfjs_layers_model",
        "load_keras_model",
        "convert_saved_model",
        "convert_tf_hub",
        "convert_frozen_model",
        "write_weights",
        "read_weights",
        "convert_jax",
        "web_package",
    ):
        assert fn + "(" in code, fn


@pytest.mark.slow
def test_examples_run(tmp_path):
    pytest.importorskip("jax")
    script = tmp_path / "examples.py"
    script.write_text("\n".join(example_blocks()))
    res = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for out in (
        "mlp_layers",
        "mlp_layers_q8",
        "mlp_graph",
        "mlp_small_shards",
        "affine_graph",
        "affine_hub",
        "affine_frozen_graph",
        "raw_weights",
        "jax_graph",
    ):
        assert os.path.isfile(tmp_path / out / "model.json") or out == "raw_weights", out
    assert (tmp_path / "roundtrip.h5").is_file()
