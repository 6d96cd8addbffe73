"""Same results as the reference converter (only when ``REFERENCE_CONVERTER`` is set).

For Keras 2 h5 inputs the topology must be identical and every weight equal by name,
including the quantization metadata; only the weight *order* differs on purpose
(model order instead of the reference's alphabetical h5 order).
"""

from __future__ import annotations

import json
import os
import subprocess

import keras_models as km
import numpy as np
import pytest

from tfjsconv import api, model_json
from tfjsconv.options import ConversionOptions

REFERENCE = os.environ.get("REFERENCE_CONVERTER")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REFERENCE, reason="REFERENCE_CONVERTER is not set"),
]

CASES = [
    ("mlp", ()),
    ("cnn", ("--quantize_uint8=*",)),
    ("lstm", ("--split_weights_by_layer", "--quantize_float16=lstm/*")),
]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return km.cached_models(str(tmp_path_factory.getbasetemp()))


def _entries(obj: dict) -> dict:
    return {w["name"]: w for g in obj["weightsManifest"] for w in g["weights"]}


@pytest.mark.parametrize("name,flags", CASES, ids=[c[0] for c in CASES])
def test_matches_reference(models, tmp_path, name, flags):
    ref_dir = tmp_path / "ref"
    subprocess.run(
        [
            REFERENCE,
            "--input_format=keras",
            "--output_format=tfjs_layers_model",
            *flags,
            models[name],
            str(ref_dir),
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    kwargs = {"split_weights_by_layer": "--split_weights_by_layer" in flags}
    for flag in flags:
        if flag.startswith("--quantize_"):
            dtype, pattern = flag[len("--quantize_") :].split("=")
            kwargs[f"quantize_{dtype}"] = tuple(pattern.split(","))
    ours_dir = tmp_path / "ours"
    api.convert(
        models[name],
        str(ours_dir),
        ConversionOptions(input_format="keras", output_format="tfjs_layers_model", **kwargs),
    )
    ref_obj, ref_w = model_json.load_tfjs_model(str(ref_dir))
    our_obj, our_w = model_json.load_tfjs_model(str(ours_dir))
    assert our_obj["modelTopology"] == ref_obj["modelTopology"]
    assert our_obj["generatedBy"] == ref_obj["generatedBy"]
    assert _entries(our_obj) == _entries(ref_obj)  # names, shapes, dtypes, quantization
    assert len(our_obj["weightsManifest"]) == len(ref_obj["weightsManifest"])
    ours, ref = dict(our_w), dict(ref_w)
    for key in ref:
        np.testing.assert_array_equal(ours[key], ref[key])
    assert json.loads((ours_dir / "model.json").read_text())["convertedBy"].endswith("(tfjsconv 0.1.0)")
