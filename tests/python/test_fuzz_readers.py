"""Fuzz the model.json and weight readers: whatever the input, only ConversionError may escape."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfjsconv.errors import ConversionError
from tfjsconv.model_json import dumps, load_model_json, load_tfjs_model
from tfjsconv.weights import read_weights, write_weights

# The test suite runs a fixed example set (derandomized: a run cannot fail on a draw the
# previous run never made, so a red CI means a change broke something); setting
# TFJSCONV_FUZZ_EXAMPLES (e.g. 20000) makes a random, longer hunt for new findings.
_HUNT = os.environ.get("TFJSCONV_FUZZ_EXAMPLES")
SETTINGS = settings(
    max_examples=int(_HUNT or "200"),
    derandomize=not _HUNT,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=6), c, max_size=4)),
    max_leaves=12,
)

dtypes = st.sampled_from(
    ["float32", "int32", "bool", "complex64", "string", "uint8", "float64", None, 7, [], {}]
)
shapes = st.one_of(
    st.lists(st.integers(-2, 5), max_size=3), st.lists(st.integers(0, 2**62), max_size=3), json_scalars
)
quant = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(["uint8", "uint16", "float16", "int8", None, [], {}]),
            "min": st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=2)),
            "scale": st.one_of(st.floats(allow_nan=True), st.integers(), st.none()),
        },
        optional={"original_dtype": st.sampled_from(["float32", "int32", "bool", None, []])},
    ),
)
weight_entries = st.one_of(
    st.fixed_dictionaries(
        {"name": st.one_of(st.text(min_size=1, max_size=4), st.integers()), "shape": shapes, "dtype": dtypes},
        optional={"quantization": quant},
    ),
    json_values,
)
paths = st.one_of(
    st.sampled_from(
        [
            "s0.bin",
            "s1.bin",
            "../s0.bin",
            "/etc/passwd",
            "sub/../s0.bin",
            "",
            "missing.bin",
            "dir",
            "s0.bin\x00",
            "C:\\x",
            "./s1.bin",
            "\ud800.bin",
            "loop",
            "x/" * 3000,
        ]
    ),
    st.text(max_size=6),
)
groups = st.one_of(
    st.fixed_dictionaries(
        {"paths": st.lists(paths, max_size=3), "weights": st.lists(weight_entries, max_size=4)}
    ),
    json_values,
)
manifests = st.one_of(st.lists(groups, max_size=3), json_values)


def _expect_only_conversion_errors(fn, *args):
    try:
        fn(*args)
    except ConversionError as e:
        assert str(e) and "\n" not in str(e)


@SETTINGS
@given(manifest=manifests, shard0=st.binary(max_size=64), shard1=st.binary(max_size=64))
def test_read_weights_random_manifests(manifest, shard0, shard1):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "s0.bin"), "wb") as f:
            f.write(shard0)
        with open(os.path.join(d, "s1.bin"), "wb") as f:
            f.write(shard1)
        os.mkdir(os.path.join(d, "dir"))
        os.symlink("loop", os.path.join(d, "loop"))
        _expect_only_conversion_errors(read_weights, manifest, d)


def _valid_model(d):
    manifest = write_weights(
        [
            [
                ("a", np.arange(5, dtype=np.float32)),
                ("s", np.array(["x", "yy"])),
                ("b", np.array([True, False])),
                ("q", np.linspace(-1, 1, 9).astype(np.float32)),
            ]
        ],
        d,
        shard_size_bytes=16,
        quantization={"uint8": ("q",)},
    )
    return {"format": "layers-model", "modelTopology": {}, "weightsManifest": manifest}


@SETTINGS
@given(data=st.data())
def test_mutated_valid_model(data):
    """Flip/trim/extend bytes of a valid model.json and its shards."""
    with tempfile.TemporaryDirectory() as d:
        model = _valid_model(d)
        raw = bytearray(dumps(model))
        files = ["model.json"] + model["weightsManifest"][0]["paths"]
        target = data.draw(st.sampled_from(files))
        path = os.path.join(d, target)
        content = bytearray(raw if target == "model.json" else open(path, "rb").read())
        op = data.draw(st.sampled_from(["flip", "truncate", "extend", "replace"]))
        if op == "flip" and content:
            i = data.draw(st.integers(0, len(content) - 1))
            content[i] = data.draw(st.integers(0, 255))
        elif op == "truncate":
            del content[data.draw(st.integers(0, len(content))) :]
        elif op == "extend":
            content += data.draw(st.binary(min_size=1, max_size=8))
        else:
            content = bytearray(data.draw(st.binary(max_size=40)))
        with open(path, "wb") as f:
            f.write(content)
        if target != "model.json":
            with open(os.path.join(d, "model.json"), "wb") as f:
                f.write(raw)
        _expect_only_conversion_errors(load_tfjs_model, d)


@SETTINGS
@given(manifest_value=json_values, extra=st.dictionaries(st.text(max_size=5), json_values, max_size=3))
def test_mutated_manifest_structure(manifest_value, extra):
    """Replace the manifest (or parts of it) by arbitrary JSON."""
    with tempfile.TemporaryDirectory() as d:
        model = _valid_model(d)
        model.update(extra)
        model["weightsManifest"] = manifest_value
        with open(os.path.join(d, "model.json"), "w") as f:
            json.dump(model, f)
        _expect_only_conversion_errors(load_tfjs_model, d)


@SETTINGS
@given(content=st.binary(max_size=80))
def test_load_model_json_random_bytes(content):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "model.json"), "wb") as f:
            f.write(content)
        _expect_only_conversion_errors(lambda p: load_model_json(p, require_weights_manifest=True), d)
