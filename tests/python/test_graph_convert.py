"""Graph-model conversions checked against TensorFlow's own predictions in real tfjs 4.22.

Models come from ``graph_models`` (seeded) and are built once per session.  Every
converted model is loaded by ``@tensorflow/tfjs`` (cpu backend, and wasm where tfjs
supports the ops) and its outputs are compared with TF's within a per-model bound
(``tolerances``: 4x the gap between TF's float32 run and the Keras model rebuilt in
float64, never under 8 float32 ulps of the output scale; models that are not Keras get
the ulp floor).  Quantized models add the effect of quantizing the weights, measured on
TF itself (see ``test_quantized_graph_model``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import graph_models as gm
import numpy as np
import pytest
import tolerances

from tfjsconv import api
from tfjsconv.errors import ConversionError, UnsupportedOpsError
from tfjsconv.options import ConversionOptions

pytestmark = [pytest.mark.tfjs]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Lazily built models: ``models('mlp') -> (path, inputs)``."""
    root = str(tmp_path_factory.mktemp("graph_models"))
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = getattr(gm, name)(root)
        return cache[name]

    get.root = root
    return get


@pytest.fixture(scope="session")
def expected(models):
    """TF's predictions per model (SavedModel signature outputs)."""
    cache: dict[str, dict] = {}

    def get(name: str, signature: str = "serving_default"):
        if name not in cache:
            path, inputs = models(name)
            cache[name] = gm.predict_saved_model(path, inputs, signature)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tol(models, expected):
    """A model's parity tolerance: ``tol(name, signature) -> float`` (``tolerances``)."""
    cache: dict[tuple, float] = {}

    def get(name: str, signature: str = "serving_default") -> float:
        if (name, signature) not in cache:
            path, inputs = models(name)
            ref32 = expected(name, signature)
            names = sorted(ref32)
            twin = tolerances.keras_float64_outputs(path, inputs)
            ref64 = [twin[n] for n in names] if twin is not None and sorted(twin) == names else None
            value, why = tolerances.tolerance([ref32[n] for n in names], ref64)
            print(f"\n{name}: tolerance {value:.3g} ({why})")
            cache[(name, signature)] = value
        return cache[(name, signature)]

    return get


def floor_tol(expected: dict) -> float:
    """The ulp floor of ``tolerances`` (outputs computed without a float64 twin)."""
    return tolerances.tolerance(list(expected.values()), None)[0]


def convert(src: str, out: Path, **opts) -> Path:
    opts.setdefault("input_format", "tf_saved_model")
    opts.setdefault("output_format", "tfjs_graph_model")
    api.convert(src, str(out), ConversionOptions(**opts))
    return out


def load(out: Path) -> dict:
    return json.loads((out / "model.json").read_text())


def ops_of(model: dict):
    return sorted({n["op"] for n in model["modelTopology"]["node"]})


def assert_runtime_matches(tfjs, out: Path, inputs, expected: dict, *, tol: float, backends=("cpu",)):
    """Every signature output, by name, is within ``tol`` of TF's on each backend."""
    for backend in backends:
        answer = tfjs.run(out, inputs, kind="graph", backend=backend)
        names = [o["name"] for o in answer["outputs"]]
        assert sorted(names) == sorted(expected), (names, sorted(expected))
        for name, got in zip(names, answer["arrays"], strict=False):
            want = expected[name]
            assert got.shape == want.shape, (backend, name)
            if want.dtype.kind in "iub":
                np.testing.assert_array_equal(got, want, err_msg=f"{backend}:{name}")
            else:
                np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{backend}:{name}")


# ----------------------------------------------------------------- model families


def test_mlp_fused_matmul(tfjs, models, expected, tol, tmp_path):
    path, x = models("mlp")
    out = convert(path, tmp_path / "mlp")
    model = load(out)
    assert list(model) == [
        "format",
        "generatedBy",
        "convertedBy",
        "signature",
        "modelTopology",
        "weightsManifest",
    ]
    assert model["convertedBy"] == "TensorFlow.js Converter v4.22.0 (tfjsconv 0.1.0)"
    assert "_FusedMatMul" in ops_of(model) and "MatMul" not in ops_of(model)
    assert [p for g in model["weightsManifest"] for p in g["paths"]] == ["group1-shard1of1.bin"]
    assert_runtime_matches(tfjs, out, x, expected("mlp"), tol=tol("mlp"), backends=("cpu", "wasm"))


def test_cnn_batchnorm_folded_into_fused_conv(tfjs, models, expected, tol, tmp_path):
    path, x = models("cnn_bn")
    out = convert(path, tmp_path / "cnn")
    model = load(out)
    ops = ops_of(model)
    assert "_FusedConv2D" in ops
    assert not [op for op in ops if "BatchNorm" in op]
    for node in model["modelTopology"]["node"]:
        if node["op"] == "_FusedConv2D":
            assert node["device"] == "/device:CPU:0"
    assert_runtime_matches(tfjs, out, x, expected("cnn_bn"), tol=tol("cnn_bn"), backends=("cpu", "wasm"))


def test_depthwise_fused(tfjs, models, expected, tol, tmp_path):
    path, x = models("depthwise")
    out = convert(path, tmp_path / "dw")
    assert "FusedDepthwiseConv2dNative" in ops_of(load(out))
    assert_runtime_matches(
        tfjs, out, x, expected("depthwise"), tol=tol("depthwise"), backends=("cpu", "wasm")
    )


def test_lstm(tfjs, models, expected, tol, tmp_path):
    path, x = models("lstm")
    out = convert(path, tmp_path / "lstm")
    # wasm cannot run _FusedMatMul with a rank-3 bias (tfjs limitation): cpu only.
    assert_runtime_matches(tfjs, out, x, expected("lstm"), tol=tol("lstm"))


def test_lstm_control_flow_v2(tfjs, models, expected, tol, tmp_path):
    path, x = models("lstm")
    out = convert(path, tmp_path / "lstm2", control_flow_v2=True)
    ops = ops_of(load(out))
    assert "Merge" not in ops and "Switch" not in ops
    assert {"While", "StatelessWhile"} & set(ops)
    assert_runtime_matches(tfjs, out, x, expected("lstm"), tol=tol("lstm"))


def test_prelu_fused(tfjs, models, expected, tol, tmp_path):
    path, x = models("prelu")
    out = convert(path, tmp_path / "prelu")
    model = load(out)
    fused = [
        n
        for n in model["modelTopology"]["node"]
        if n["op"] == "Prelu"
        or b"Prelu"
        in b"".join(
            __import__("base64").b64decode(s)
            for s in n.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
        )
    ]
    assert fused, ops_of(model)
    assert "Neg" not in ops_of(model)
    assert_runtime_matches(tfjs, out, x, expected("prelu"), tol=tol("prelu"), backends=("cpu", "wasm"))


def test_same_shaped_outputs_keep_user_names(tfjs, models, expected, tol, tmp_path):
    path, x = models("two_outputs")
    out = convert(path, tmp_path / "two", use_structured_outputs_names=True)
    model = load(out)
    assert sorted(model["signature"]["outputs"]) == ["a_out", "b_out"]
    assert model["userDefinedMetadata"]["structuredOutputKeys"] == ["a_out", "b_out"]
    # Each name must be wired to its own tensor: a_out = 2y, b_out = relu(y).
    assert_runtime_matches(tfjs, out, x, expected("two_outputs"), tol=tol("two_outputs"))


def test_metadata_order_and_structured_keys(models, tmp_path):
    path, _ = models("two_outputs")
    out = convert(path, tmp_path / "meta", metadata=(("z", {"a": 1}), ("b", [1, 2])))
    model = load(out)
    assert list(model)[5] == "userDefinedMetadata"
    assert model["userDefinedMetadata"] == {"z": {"a": 1}, "b": [1, 2]}


def test_hash_table_initializer(tfjs, models, expected, tol, tmp_path):
    path, x = models("hash_table")
    out = convert(path, tmp_path / "table")
    model = load(out)
    assert list(model) == [
        "format",
        "generatedBy",
        "convertedBy",
        "signature",
        "modelTopology",
        "modelInitializer",
        "initializerSignature",
        "weightsManifest",
    ]
    resource_inputs = [v for v in model["signature"]["inputs"].values() if v["dtype"] == "DT_RESOURCE"]
    init_outputs = list(model["initializerSignature"]["outputs"].values())
    assert [v["resourceId"] for v in resource_inputs] == [v["resourceId"] for v in init_outputs] == [1]
    init_ops = {n["op"] for n in model["modelInitializer"]["node"]}
    assert {"HashTableV2", "LookupTableImportV2"} <= init_ops
    assert "Placeholder" not in init_ops  # nothing left for the runtime to feed
    assert_runtime_matches(tfjs, out, {"words": x["words"]}, expected("hash_table"), tol=tol("hash_table"))


@pytest.mark.parametrize("name, inputs", [("cnn_bn", None), ("hash_table", "words")])
def test_freeze_fallback_without_tf_private_helpers(
    tfjs, models, expected, tol, tmp_path, monkeypatch, name, inputs
):
    """Freezing uses two TensorFlow-private helpers; a TF without them takes the public
    ``convert_variables_to_constants_v2`` path, which must give a model that runs the same."""
    from tensorflow.python.framework import convert_to_constants

    from tfjsconv.graph import freeze

    public = convert_to_constants.convert_variables_to_constants_v2
    calls = []
    monkeypatch.setattr(freeze, "_lean_freeze_helpers", lambda c2c: None)
    monkeypatch.setattr(
        convert_to_constants,
        "convert_variables_to_constants_v2",
        lambda *a, **k: calls.append(1) or public(*a, **k),
    )
    path, x = models(name)
    out = convert(path, tmp_path / "fallback")
    assert calls, "the public freeze path was not taken"
    feed = {inputs: x[inputs]} if inputs else x
    assert_runtime_matches(tfjs, out, feed, expected(name), tol=tol(name))


def test_frozen_graph(tfjs, models, tmp_path):
    path, x = models("frozen_graph")
    out = convert(path, tmp_path / "frozen", input_format="tf_frozen_model", output_node_names=("output",))
    model = load(out)
    assert model["signature"] == {"outputs": {"output": {"name": "output"}}}
    assert "_FusedConv2D" in ops_of(model)
    tf = gm._tf()
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef.FromString(Path(path).read_bytes())
    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            want = sess.run("output:0", {"input:0": x["input"]})
    assert_runtime_matches(tfjs, out, x, {"output": want}, tol=floor_tol({"output": want}))


def test_frozen_graph_unknown_output_node(models, tmp_path):
    path, _ = models("frozen_graph")
    with pytest.raises(ConversionError, match=r"not found in the graph .*: nope, zzz$"):
        convert(
            path, tmp_path / "bad", input_format="tf_frozen_model", output_node_names=("output,zzz", "nope")
        )


def test_hub_local_directory(tfjs, models, expected, tol, tmp_path):
    path, x = models("hub_module")
    out = convert(path, tmp_path / "hub", input_format="tf_hub")
    assert list(load(out)["signature"]["outputs"]) == ["embedding"]
    assert_runtime_matches(tfjs, out, x, expected("hub_module", "default"), tol=tol("hub_module", "default"))


def test_hub_handle_from_cache(models, tmp_path, monkeypatch):
    import hashlib
    import shutil

    path, _ = models("hub_module")
    handle = "https://tfhub.dev/example/embed/1"
    cache = tmp_path / "cache"
    shutil.copytree(path, cache / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    out = convert(handle, tmp_path / "hub", input_format="tf_hub")
    assert (out / "model.json").is_file()


def test_hub_uncached_url_fails_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty"))
    with pytest.raises(ConversionError, match="cannot be downloaded offline") as e:
        convert("https://tfhub.dev/google/nothing/1", tmp_path / "hub", input_format="tf_hub")
    assert "\n" not in str(e.value)


def test_keras_h5_to_graph(tfjs, models, expected, tol, tmp_path):
    path, x = models("mlp")
    h5 = os.path.join(models.root, "mlp.h5")
    out = convert(h5, tmp_path / "k2", input_format="keras")
    model = load(out)
    assert "_FusedMatMul" in ops_of(model)
    assert list(model["signature"]["outputs"]) == ["d2"]
    assert_runtime_matches(tfjs, out, x, expected("mlp"), tol=tol("mlp"))


def test_keras3_file_to_graph(tfjs, models, tmp_path):
    import keras

    path, x = models("keras3_model")
    model3 = keras.saving.load_model(path)
    want = model3(x["features"]).numpy()
    out = convert(path, tmp_path / "k3", input_format="keras_keras")
    model = load(out)
    (name,) = model["signature"]["outputs"]
    bound = tolerances.keras_bound(model3, list(x.values()))
    assert_runtime_matches(tfjs, out, list(x.values()), {name: want}, tol=bound, backends=("cpu", "wasm"))


# ---------------------------------------------------------------- ops and errors


def test_unsupported_ops_listed_sorted(models, tmp_path):
    path, _ = models("unsupported")
    with pytest.raises(UnsupportedOpsError) as e:
        convert(path, tmp_path / "bad")
    assert e.value.ops == ["Lgamma", "MatrixDeterminant"]
    assert str(e.value) == "Unsupported Ops in the model before optimization: Lgamma, MatrixDeterminant"
    assert not (tmp_path / "bad").exists()


def test_skip_op_check(models, tmp_path):
    path, _ = models("unsupported")
    out = convert(path, tmp_path / "skip", skip_op_check=True)
    assert {"Lgamma", "MatrixDeterminant"} <= set(ops_of(load(out)))


def test_missing_signature_lists_available(models, tmp_path):
    path, _ = models("two_outputs")
    with pytest.raises(
        ConversionError, match=r'signature "nope" does not exist .*available signatures: serving_default$'
    ):
        convert(path, tmp_path / "o", signature_name="nope")


def test_wrong_tags(models, tmp_path):
    path, _ = models("two_outputs")
    with pytest.raises(
        ConversionError, match=r"no MetaGraph with tags gpu,serve .*available tag sets: serve$"
    ):
        convert(path, tmp_path / "o", saved_model_tags=("serve", "gpu"))


def test_not_a_saved_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="not a SavedModel directory"):
        convert(str(tmp_path / "empty"), tmp_path / "o")


def test_corrupt_saved_model(tmp_path):
    d = tmp_path / "corrupt"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"\xff\xfe this is not a protobuf \x00\x01")
    with pytest.raises(ConversionError, match="corrupt SavedModel") as e:
        convert(str(d), tmp_path / "o")
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- determinism


_CONVERT_SNIPPET = """
import sys
from tfjsconv import api
from tfjsconv.options import ConversionOptions
api.convert(sys.argv[1], sys.argv[2], ConversionOptions(input_format=sys.argv[3], output_format="tfjs_graph_model"))
"""


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn_bn", "hash_table"])
def test_byte_identical_across_processes(models, tmp_path, name):
    path, _ = models(name)
    env = dict(
        os.environ, PYTHONPATH=str(Path(api.__file__).resolve().parent.parent), PYTHONHASHSEED="random"
    )
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        subprocess.run(
            [sys.executable, "-c", _CONVERT_SNIPPET, path, str(out), "tf_saved_model"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        outs.append(_files(out))
    # And a third conversion in this (long-lived, already warmed-up) process.
    outs.append(_files(convert(path, tmp_path / "inproc")))
    assert outs[0] == outs[1] == outs[2]


# ------------------------------------------------------------ more input paths


def test_layers_model_to_graph(tfjs, models, expected, tol, tmp_path):
    path, x = models("cnn_bn")
    h5 = os.path.join(models.root, "cnn.h5")
    layers = convert(h5, tmp_path / "layers", input_format="keras", output_format="tfjs_layers_model")
    out = convert(str(layers), tmp_path / "graph", input_format="tfjs_layers_model")
    model = load(out)
    assert "_FusedConv2D" in ops_of(model)
    assert_runtime_matches(
        tfjs,
        out,
        list(x.values()),
        {list(model["signature"]["outputs"])[0]: expected("cnn_bn")["logits"]},
        tol=tol("cnn_bn"),
    )


def test_keras3_h5_to_graph(tfjs, models, tmp_path):
    import keras

    path, x = models("keras3_model")
    model3 = keras.saving.load_model(path)
    h5 = tmp_path / "k3.h5"
    model3.save(h5)
    out = convert(str(h5), tmp_path / "k3h5", input_format="keras")
    (name,) = load(out)["signature"]["outputs"]
    want = model3(x["features"]).numpy()
    bound = tolerances.keras_bound(model3, list(x.values()))
    assert_runtime_matches(tfjs, out, list(x.values()), {name: want}, tol=bound)


def quantization_spread(path: str, inputs: dict, dtype: str) -> float:
    """How far TF's own output moves when every float32 weight of the Keras model is
    quantized to ``dtype`` and dequantized (the manifest's math, ``tfjsconv.quantization``)."""
    import tf_keras

    from tfjsconv import quantization

    model = tf_keras.models.load_model(path, compile=False)
    (x,) = inputs.values()
    before = model(x, training=False).numpy()
    model.set_weights(
        [
            quantization.dequantize(*quantization.quantize(w, dtype)) if w.dtype == np.float32 else w
            for w in model.get_weights()
        ]
    )
    return float(np.abs(model(x, training=False).numpy() - before).max())


@pytest.mark.parametrize("flag,dtype", [("quantize_uint8", "uint8"), ("quantize_float16", "float16")])
def test_quantized_graph_model(tfjs, models, expected, tol, tmp_path, flag, dtype):
    """Bound: 4x the output shift that quantizing the Keras weights causes in TF itself
    (the converter quantizes the BN-folded weights instead: the same value ranges per
    tensor, so an error of the same order), plus the float32 parity tolerance."""
    path, x = models("cnn_bn")
    out = convert(path, tmp_path / flag, **{flag: True})
    manifest = load(out)["weightsManifest"]
    quantized = [w for g in manifest for w in g["weights"] if "quantization" in w]
    assert quantized and all(w["dtype"] == "float32" for w in quantized)
    spread = quantization_spread(path, x, dtype)
    assert spread > 0, "quantizing changed nothing: the bound would not be a bound"
    bound = tolerances.SPREAD_FACTOR * spread + tol("cnn_bn")
    print(f"\n{dtype}: TF output shift from quantized weights {spread:.3g}, tolerance {bound:.3g}")
    assert_runtime_matches(tfjs, out, x, expected("cnn_bn"), tol=bound)


def test_weight_order_and_sharding(models, tmp_path):
    path, _ = models("cnn_bn")
    out = convert(path, tmp_path / "sharded", weight_shard_size_bytes=1000)
    model = load(out)
    (group,) = model["weightsManifest"]
    consts = [n["name"] for n in model["modelTopology"]["node"] if n["op"] == "Const"]
    assert [w["name"] for w in group["weights"]] == consts  # node order, one group
    total = sum((out / p).stat().st_size for p in group["paths"])
    assert len(group["paths"]) == -(-total // 1000) and all(
        p.startswith("group1-shard") for p in group["paths"]
    )
    for node in model["modelTopology"]["node"]:
        if node["op"] == "Const":
            assert set(node["attr"]["value"]["tensor"]) <= {"dtype", "tensorShape"}


def test_tf1_hub_module(tfjs, models, tmp_path):
    path, x = models("tf1_hub_module")
    want = gm.predict_saved_model(path, x, "default", tags=[])
    out = convert(path, tmp_path / "tf1hub", input_format="tf_hub")
    model = load(out)
    assert list(model["signature"]["outputs"]) == ["default"]
    assert "_FusedMatMul" in ops_of(model)
    assert_runtime_matches(tfjs, out, x, want, tol=floor_tol(want), backends=("cpu", "wasm"))
