"""--quantize_budget: per-weight dtypes chosen by measured error, re-checked in tfjs 4.22.

The source model is a small tf_keras classifier (conv, depthwise conv, batch norm,
PReLU, two dense layers) with seeded weights. Every claim is checked outside the
search: the chosen model runs in the real tfjs runtime (graph and layers outputs)
against TensorFlow's float32 predictions of the source model, the uniform
float16/uint16/uint8 models are written by the plain ``--quantize_*`` path and
measured in tfjs the same way, and bytes are counted from the shard files.

Bound for tfjs-vs-budget: the search measures in TensorFlow; tfjs runs the same
float32 arithmetic with other kernels, so its outputs may differ from TF's by the
model's own float32 rounding (``tolerances.keras_bound``: 4x TF's float32-vs-float64
gap). We allow exactly that on top of the budget.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tolerances

from tfjsconv import api, cli

pytestmark = [pytest.mark.tfjs]

BATCH = 16


def _build_model():
    import tf_keras as k

    k.utils.set_random_seed(0)
    inp = k.Input((12, 12, 3), name="img")
    x = k.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = k.layers.DepthwiseConv2D(3, padding="same")(x)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.PReLU(shared_axes=[1, 2])(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(128, activation="relu")(x)
    out = k.layers.Dense(10)(x)
    model = k.Model(inp, out)
    rng = np.random.default_rng(1)
    bn = model.layers[3]
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights(
        [
            rng.uniform(0.5, 1.5, gamma.shape),
            rng.normal(0, 0.1, beta.shape),
            rng.normal(0, 0.1, mean.shape),
            rng.uniform(0.5, 2.0, var.shape),
        ]
    )
    prelu = model.layers[4]
    prelu.set_weights([rng.uniform(0.05, 0.3, w.shape).astype(np.float32) for w in prelu.get_weights()])
    return model


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict[str, object]:
    """The model file, calibration inputs (npz), TF's float32 predictions and the bound."""
    root = tmp_path_factory.mktemp("qb")
    model = _build_model()
    path = root / "model.h5"
    model.save(path)
    x = np.random.default_rng(2).uniform(-1, 1, (BATCH, 12, 12, 3)).astype(np.float32)
    calib = root / "calib.npz"
    np.savez(calib, img=x)
    reference = np.asarray(model(x, training=False))
    return {
        "root": root,
        "h5": str(path),
        "x": x,
        "calib": str(calib),
        "reference": reference,
        "bound": tolerances.keras_bound(model, [x]),
    }


def _bytes(model_dir: Path) -> int:
    manifest = json.loads((model_dir / "model.json").read_text())["weightsManifest"]
    return sum((model_dir / p).stat().st_size for group in manifest for p in group["paths"])


def _tfjs_error(tfjs, model_dir: Path, source, kind: str) -> float:
    got = tfjs.predict(model_dir, [source["x"]], kind=kind)[0]
    return float(np.max(np.abs(got.astype(np.float64) - source["reference"])))


def _uniform(tfjs, source, output_format: str, kind: str) -> dict[str, tuple[int, float]]:
    """dtype -> (shard bytes, tfjs max-abs error) of the plain --quantize_<dtype> model."""
    out = {}
    for dtype in ("float16", "uint16", "uint8"):
        target = source["root"] / f"{kind}_{dtype}"
        if not target.exists():
            api.convert_keras(
                source["h5"], str(target), output_format=output_format, **{f"quantize_{dtype}": True}
            )
        out[dtype] = (_bytes(target), _tfjs_error(tfjs, target, source, kind))
    return out


def _convert(source, out: Path, output_format: str, budget: float, **extra) -> Path:
    api.convert_keras(
        source["h5"],
        str(out),
        output_format=output_format,
        quantize_budget=budget,
        calibration_inputs=source["calib"],
        **extra,
    )
    return out


@pytest.mark.parametrize(
    "output_format,kind", [("tfjs_graph_model", "graph"), ("tfjs_layers_model", "layers")]
)
def test_budget_met_in_tfjs_and_smaller_than_uniform(tfjs, source, output_format, kind):
    uniform = _uniform(tfjs, source, output_format, kind)
    assert uniform["float16"][1] < uniform["uint8"][1], uniform  # the model spans a range
    # A budget between uniform float16's and uniform uint8's measured errors.
    budget = float(np.sqrt(uniform["float16"][1] * uniform["uint8"][1]))
    out = _convert(source, source["root"] / f"{kind}_budget", output_format, budget)
    error = _tfjs_error(tfjs, out, source, kind)
    assert error <= budget + source["bound"], (error, budget, source["bound"])
    chosen = _bytes(out)
    meeting = {d: b for d, (b, e) in uniform.items() if e <= budget}
    assert meeting, uniform  # at least one 2-byte choice meets it (else the test says nothing)
    assert all(chosen < b for b in meeting.values()), (chosen, uniform, budget)
    manifest_dtypes = {
        w.get("quantization", {}).get("dtype", w["dtype"])
        for g in json.loads((out / "model.json").read_text())["weightsManifest"]
        for w in g["weights"]
    }
    assert "uint8" in manifest_dtypes and len(manifest_dtypes - {"int32"}) >= 2, manifest_dtypes  # a mix

    report = json.loads((out / "quantization_report.json").read_text())
    assert report["chosen"]["bytes"] == chosen
    assert report["chosen"]["error"] <= budget
    assert report["evaluations"] <= report["evaluation_cap"]
    assert report["calibration"].startswith("calib.npz")
    table = (out / "quantization_report.md").read_text()
    for row in report["weights"]:
        assert f"`{row['name']}`" in table
    svg = (out / "quantization_report.svg").read_text()
    assert (
        svg.startswith("<svg") and "chosen" in svg and all(d in svg for d in ("float16", "uint16", "uint8"))
    )


def test_same_inputs_same_bytes(source, tmp_path):
    outs = [
        _convert(
            source,
            tmp_path / name,
            "tfjs_graph_model",
            1e-3,
            quantization_report_dir=str(tmp_path / f"{name}_r"),
        )
        for name in ("a", "b")
    ]
    for sub in ("a", "a_r"):
        left = tmp_path / sub
        right = tmp_path / sub.replace("a", "b", 1)
        names = sorted(p.name for p in left.iterdir())
        assert names == sorted(p.name for p in right.iterdir())
        for name in names:
            assert (left / name).read_bytes() == (right / name).read_bytes(), name
    assert sorted(p.name for p in outs[0].iterdir()) == ["group1-shard1of1.bin", "model.json"]


def test_top1_budget_zero_keeps_every_prediction(tfjs, source, tmp_path):
    out = _convert(source, tmp_path / "top1", "tfjs_layers_model", 0.0, error_metric="top1")
    got = tfjs.predict(out, [source["x"]], kind="layers")[0]
    np.testing.assert_array_equal(np.argmax(got, -1), np.argmax(source["reference"], -1))
    report = json.loads((out / "quantization_report.json").read_text())
    assert report["metric"] == "top1" and report["chosen"]["bytes"] < report["uniform"]["float32"]["bytes"]


def test_generated_inputs_are_announced(source, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [
            "--input_format=keras",
            "--quantize_budget=0.01",
            "--error_metric=max_rel",
            source["h5"],
            str(tmp_path / "g"),
        ],
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    assert "no calibration inputs given" in err.getvalue()
    report = json.loads((tmp_path / "g" / "quantization_report.json").read_text())
    assert report["calibration"].startswith("generated from the signature: 8 samples")


def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _bad_cases(root: Path, x: np.ndarray) -> list[tuple[list[str], str]]:
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    empty = root / "empty.npz"
    empty.write_bytes(b"")
    garbage = root / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    ragged = root / "ragged.json"
    ragged.write_text(json.dumps({"img": [[1.0, 2.0], [3.0]]}))
    return [
        (["--quantize_budget=-0.1"], "quantize_budget must be a finite number >= 0, got -0.1"),
        (["--quantize_budget=nan"], "quantize_budget must be a finite number >= 0, got nan"),
        (["--quantize_budget=abc"], "argument --quantize_budget: expected a number, got 'abc'"),
        (["--quantize_budget=0.1", "--quantize_uint8"], "do not combine it with quantize_uint8"),
        (["--calibration_inputs=x.npz"], "calibration_inputs applies only with quantize_budget"),
        (["--quantize_budget=0.1", "--output_format=keras_saved_model"], None),
        (
            ["--quantize_budget=0.1", "--calibration_inputs=" + _npz(root / "name.npz", image=x)],
            "has input 'image', which the model does not have (inputs: img)",
        ),
        (
            ["--quantize_budget=0.1", "--calibration_inputs=" + _npz(root / "shape.npz", img=x[:, :6])],
            "calibration input 'img' has shape [16, 6, 12, 3], the model input is [?, 12, 12, 3]",
        ),
        (
            [
                "--quantize_budget=0.1",
                "--calibration_inputs=" + _npz(root / "dtype.npz", img=x.astype(np.int32)),
            ],
            "calibration input 'img' has dtype int32, the model input is float32",
        ),
        (["--quantize_budget=0.1", f"--calibration_inputs={empty}"], f"calibration file {empty} is empty"),
        (["--quantize_budget=0.1", f"--calibration_inputs={garbage}"], "is not a readable .npz"),
        (
            ["--quantize_budget=0.1", "--calibration_inputs=" + _npz(root / "nan.npz", img=nan)],
            "calibration input 'img' contains NaN or Infinity",
        ),
        (
            ["--quantize_budget=0.1", f"--calibration_inputs={ragged}"],
            "calibration input 'img' in " + str(ragged) + " is not a rectangular list of numbers",
        ),
        (
            ["--quantize_budget=0.1", "--calibration_inputs=" + str(root / "missing.json")],
            "calibration file not found",
        ),
    ]


def test_bad_input_is_one_line_and_writes_nothing(source, tmp_path):
    for i, (flags, message) in enumerate(_bad_cases(tmp_path, source["x"])):
        out_dir = tmp_path / f"out{i}"
        report_dir = tmp_path / f"report{i}"
        err = io.StringIO()
        code = cli.main(
            [
                "--input_format=keras",
                *flags,
                f"--quantization_report_dir={report_dir}",
                source["h5"],
                str(out_dir),
            ]
            if "--calibration_inputs=x.npz" not in flags
            else ["--input_format=keras", *flags, source["h5"], str(out_dir)],
            stdout=io.StringIO(),
            stderr=err,
        )
        text = err.getvalue()
        assert code != 0, (flags, text)
        lines = [line for line in text.splitlines() if "warning" not in line]
        assert len(lines) == 1 and lines[0].startswith("tensorflowjs_converter: error: "), (flags, text)
        if message:
            assert message in lines[0], (flags, lines[0])
        assert not out_dir.exists() and not report_dir.exists(), flags
        assert not [p for p in os.listdir(tmp_path) if p.startswith(".tfjsconv")], flags


def test_budget_above_uniform_uint8_takes_it_without_searching(source, tmp_path):
    out = _convert(source, tmp_path / "u8", "tfjs_graph_model", 1.0)
    report = json.loads((out / "quantization_report.json").read_text())
    assert report["evaluations"] == 4  # the reference and the three uniform runs
    assert report["chosen"] == report["uniform"]["uint8"]
    assert _bytes(out) == report["uniform"]["uint8"]["bytes"]


def test_search_keeps_to_the_cap_and_the_budget():
    """The search on a synthetic model whose error is a known function of the dtypes
    (each weight adds its own error per dtype; the largest sum is the model's error)."""
    from tfjsconv.quantize_search import search

    rng = np.random.default_rng(0)
    weights = [search.Weight(f"w{i:02d}", (int(rng.integers(10, 400)),), True) for i in range(40)]
    arrays = {w.name: rng.normal(0, 1, w.shape).astype(np.float32) for w in weights}
    cost = {
        w.name: {"float16": 1e-4 * (i + 1), "uint16": 1e-5 * (i + 1), "uint8": 3e-3 * (i + 1)}
        for i, w in enumerate(weights)
    }
    calls = []

    def measure(assignment):
        calls.append(dict(assignment))
        err = sum(cost[n][d] for n, d in assignment.items())
        return err, err

    budget = 0.05
    result = search.search(weights, arrays, measure, budget, max_evaluations=40)
    assert result.evaluations == len(calls) + 1 <= 40
    assert result.grouped  # 40 weights do not fit 40 evaluations one by one
    assert result.error == sum(cost[n][d] for n, d in result.assignment.items()) <= budget
    two_byte = search.total_bytes(weights, {w.name: "uint16" for w in weights})
    # Uniform uint16 is within budget here (sum 8.2e-3), uniform uint8 is not (2.46).
    assert result.bytes < two_byte
    again = search.search(weights, arrays, measure, budget, max_evaluations=40)
    assert again.assignment == result.assignment


@pytest.mark.parametrize("output_format", ["tfjs_graph_model", "tfjs_layers_model"])
def test_evaluator_runs_the_written_model_like_tensorflow(source, tmp_path, output_format):
    """The search's TF run of the converted model (tfjs-only ops re-spelled for the graph:
    FusedDepthwiseConv2dNative, Prelu) gives the source model's predictions, within the
    model's float32 parity bound; swapping in other weight values changes the outputs."""
    from tfjsconv import model_json
    from tfjsconv.options import ConversionOptions
    from tfjsconv.quantize_search import apply

    out = tmp_path / "f32"
    api.convert_keras(source["h5"], str(out), output_format=output_format)
    model, named = model_json.load_tfjs_model(str(out))
    evaluator = apply._evaluator(model, named, ConversionOptions())
    if output_format == "tfjs_graph_model":
        ops = {n["op"] for n in model["modelTopology"]["node"]}
        assert {"FusedDepthwiseConv2dNative", "Prelu"} & ops, ops  # the re-spelled ops are exercised
    evaluator.set_inputs([source["x"]])
    got = evaluator.run()[0]
    assert tolerances.max_diff(got, source["reference"]) <= source["bound"]
    first = evaluator.fed[0]
    zeros = {first: np.zeros_like(dict(named)[first])}
    assert tolerances.max_diff(evaluator.run(zeros)[0], source["reference"]) > source["bound"]
    evaluator.close()
