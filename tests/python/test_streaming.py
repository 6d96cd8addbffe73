"""Weights streamed from the checkpoint (``tfjsconv.graph.streaming``) change no byte.

The oracle is the converter's full-load path (every variable restored by TensorFlow,
frozen into Consts, optimized): the streamed conversion of the same SavedModel must
write byte-identical ``model.json`` and shards, for float32, uint8 and float16 outputs.
Each comparison also checks that weights were actually streamed (else it proves
nothing).  The models are the graph test models (Keras and tf.Module SavedModels,
batch norms folded into convs, PReLU, LSTM, hash tables, Hub modules) and the
benchmark's builder (``bench/streaming_models.py``) at a small size, plain and with a
constant scale after each MatMul.

The beyond-RAM run (a 4.8 GB model converted to uint8 under a 3 GB address-space cap,
every tensor checked against the checkpoint) is slow and uses ~10 GB of disk: it runs
only with ``TFJSCONV_LARGE_TESTS=1``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import graph_models as gm
import keras_models as km
import numpy as np
import pytest

from tfjsconv import chained, quantization, weights
from tfjsconv.errors import ConversionError
from tfjsconv.graph import checkpoint_source, convert, keras_graph, streaming
from tfjsconv.options import ConversionOptions

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import streaming_models  # noqa: E402


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def _convert(src: str, out: Path, stream: bool, min_bytes: int, caplog, **opts) -> int:
    """Convert ``src``; return how many weights were written from the checkpoint."""
    out.mkdir()
    fmt = opts.pop("input_format", "tf_saved_model")
    extra = {}
    if os.path.isfile(os.path.join(src, "tfhub_module.pb")):  # TF1 Hub format (as hub_to_graph)
        extra = {"tags": (), "use_own_tf_version": True}
    options = ConversionOptions(input_format=fmt, output_format="tfjs_graph_model", **opts)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tfjsconv.graph"):
        convert._convert_saved_model(
            src,
            str(out),
            options,
            "default" if fmt == "tf_hub" else "serving_default",
            streaming_enabled=stream,
            min_bytes=min_bytes,
            **extra,
        )
    return _streamed_count(caplog)


def _streamed_count(caplog) -> int:
    """How many weights the last conversion wrote from the checkpoint or h5 file (its log)."""
    messages = [r.getMessage() for r in caplog.records]
    if any("loading them all" in m for m in messages):
        return 0
    found = [
        int(m.group(1))
        for text in messages
        for m in [re.match(r"(\d+) weights stay in the checkpoint", text)]
        if m
    ]
    return found[0] if found else 0


QUANTIZATIONS = {"float32": {}, "uint8": {"quantize_uint8": True}, "float16": {"quantize_float16": True}}


def _same_both_ways(src: str, tmp_path: Path, caplog, min_bytes: int, label: str, **opts) -> int:
    streamed = _convert(src, tmp_path / f"{label}_streamed", True, min_bytes, caplog, **dict(opts))
    _convert(src, tmp_path / f"{label}_loaded", False, min_bytes, caplog, **dict(opts))
    assert _digest(tmp_path / f"{label}_streamed") == _digest(tmp_path / f"{label}_loaded")
    return streamed


# min_bytes=64 makes the test models' kernels "large"; None: nothing here is streamable
# (every weight is read by a fold or is tiny), the run checks the fallback is exact.
@pytest.mark.parametrize(
    "name,streams",
    [
        ("mlp", True),
        ("cnn_bn", True),
        ("depthwise", True),
        ("prelu", True),
        ("lstm", False),
        ("two_outputs", False),
        ("hash_table", False),
    ],
)
def test_streamed_conversion_is_byte_identical(tmp_path, caplog, name, streams):
    src, _ = getattr(gm, name)(str(tmp_path))
    for label, opts in QUANTIZATIONS.items():
        count = _same_both_ways(src, tmp_path, caplog, 64, label, **opts)
        assert (count > 0) == streams, f"{count} weights streamed"


def test_hub_modules_are_byte_identical(tmp_path, caplog):
    """TF2 and TF1 Hub modules (the TF1 one of ref variables, as ``hub.Module`` exports)."""
    for builder in (gm.hub_module, gm.tf1_hub_module):
        src, _ = builder(str(tmp_path))
        # min_bytes=16: the modules' 4x3 and 3x2 kernels count as large.
        count = _same_both_ways(src, tmp_path, caplog, 16, builder.__name__, input_format="tf_hub")
        assert count > 0, builder.__name__


def _tf1_saved_model(path: str, resource: bool) -> str:
    """A TF1 SavedModel (Builder, ``serve`` tag) of two 32x32 kernels, ref or resource variables."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 32], name="x")
        h = x
        for i in range(2):
            init = np.random.default_rng(50 + i).standard_normal((32, 32)).astype(np.float32)
            w = tf.compat.v1.get_variable(f"w{i}", initializer=init, use_resource=resource)
            h = tf.tanh(tf.matmul(h, w))
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(path)
            sig = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": h})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()
    return path


@pytest.mark.parametrize("resource", [False, True], ids=["ref_variables", "resource_variables"])
def test_tf1_saved_model_streams_byte_identically(tmp_path, caplog, resource):
    """TF1 SavedModels (no object graph): variables are matched to checkpoint keys by name
    (a ref variable is never restored: its ``VariableV2`` node is frozen from the key)."""
    src = _tf1_saved_model(str(tmp_path / "tf1"), resource)
    for label, opts in QUANTIZATIONS.items():
        assert _same_both_ways(src, tmp_path, caplog, 64, label, **opts) == 2


def test_mobilenet_default_threshold_is_byte_identical(tmp_path, caplog):
    """Real conv weights above the default threshold, batch norms folded on the stream."""
    src, _ = gm.mobilenet_v2(str(tmp_path))
    from tfjsconv.graph import weight_stash

    count = _same_both_ways(src, tmp_path, caplog, weight_stash.DEFAULT_MIN_BYTES, "mobilenet")
    assert count >= 10


@pytest.mark.parametrize("variant", streaming_models.VARIANTS)
def test_bench_model_streams_every_kernel(tmp_path, caplog, variant):
    """The benchmark's model, small: every kernel streams (also with a Mul after each
    MatMul, and folded into each conv filter), the output equals the full-load one and
    matches the checkpoint."""
    src = str(tmp_path / "sm")
    streaming_models.build(src, 3, 96, variant)
    for label, opts in QUANTIZATIONS.items():
        count = _same_both_ways(src, tmp_path, caplog, 4096, label, **opts)
        assert count == 3
        verdict = streaming_models.check(str(tmp_path / f"{label}_streamed"), src, variant)
        assert verdict.startswith("ok: 6/6"), verdict


def test_each_streamed_weight_is_read_once(tmp_path, caplog, monkeypatch):
    """The stash's questions about a weight are answered on the read that writes it:
    a model of varied weights reads every checkpoint key at most once."""
    src = str(tmp_path / "sm")
    streaming_models.build(src, 3, 96, "plain")
    reads: dict[str, int] = {}
    original = checkpoint_source.CheckpointSource.read

    def counting(self, key):
        reads[key] = reads.get(key, 0) + 1
        return original(self, key)

    monkeypatch.setattr(checkpoint_source.CheckpointSource, "read", counting)
    assert _convert(src, tmp_path / "once", True, 4096, caplog) == 3
    assert not any("converting again" in r.getMessage() for r in caplog.records)
    assert len([k for k in reads if "/w" in k or k.startswith("w")]) >= 3, reads
    assert max(reads.values()) == 1, reads


def _module_with_kernels(path: str, kernels: dict[str, np.ndarray]) -> str:
    """A tf.Module SavedModel: ``tanh(x @ k)`` chained over ``kernels`` (each 32x32)."""
    import tensorflow as tf

    class Chain(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ks = [tf.Variable(v, name=n) for n, v in kernels.items()]

        @tf.function(input_signature=[tf.TensorSpec([1, 32], tf.float32, name="x")])
        def serve(self, x):
            h = x
            for k in self.ks:
                h = tf.tanh(tf.matmul(h, k))
            return {"y": h}

    module = Chain()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


@pytest.mark.parametrize("case", ["uniform", "nan", "duplicate"])
def test_wrong_optimistic_answer_converts_again(tmp_path, caplog, case):
    """A large weight that is uniform, holds NaN or equals another (what grappler could
    use) is found on its read; the conversion runs again, reading first, and writes the
    full load's bytes."""
    rng = np.random.default_rng(7)
    varied = [rng.standard_normal((32, 32)).astype(np.float32) for _ in range(3)]
    if case == "uniform":
        varied[1] = np.full((32, 32), 0.25, np.float32)
    elif case == "nan":
        varied[1][5, 5] = np.nan
    else:
        varied[2] = varied[0].copy()
    src = _module_with_kernels(str(tmp_path / "sm"), {f"k{i}": v for i, v in enumerate(varied)})
    _same_both_ways(src, tmp_path, caplog, 64, "f32")
    streamed = _convert(src, tmp_path / "again", True, 64, caplog)
    assert any("converting again" in r.getMessage() for r in caplog.records), case
    assert streamed >= 1


def _conv_scale_model(path: str, case: str) -> tuple[str, np.ndarray, np.ndarray]:
    """A SavedModel of 3x3 convs (4 -> 8 channels) with a constant multiply per ``case``;
    returns (path, first filter, its scale).

    The first filter holds subnormal values and its scale makes some products
    subnormal: TF's constant folding flushes both, the streamed fold must too.
    """
    import tensorflow as tf

    rng = np.random.default_rng(11)
    first = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    first[0, 0, 0, :3] = np.float32(1e-39)  # subnormal inputs
    first[1, 1, 1, :] = np.float32(1e-20)  # products below float32's normal range
    second = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    scale = rng.standard_normal(8).astype(np.float32)
    scale[:2] = np.float32(1e-19)

    def conv(x, w):
        return tf.nn.conv2d(x, w, 1, "SAME")

    bodies = {
        "vector_after": lambda m, x: conv(x, m.a) * tf.constant(scale),
        "scalar_first": lambda m, x: 0.5 * conv(x, m.a),
        "two_convs_one_scale": lambda m, x: (
            tf.nn.relu(conv(x, m.a) * tf.constant(scale)) + conv(x, m.b) * tf.constant(scale)
        ),
        # Left to grappler (the filter is read in), which must give the same bytes:
        "ones": lambda m, x: conv(x, m.a) * tf.ones([8]),
        "two_muls": lambda m, x: conv(x, m.a) * tf.constant(scale) * tf.constant(scale[::-1].copy()),
        "scale_before": lambda m, x: conv(x * 0.5, m.a),
        "division": lambda m, x: conv(x, m.a) / tf.constant(np.abs(scale) + 1),  # float16-safe
        "not_per_channel": lambda m, x: (
            conv(x, m.a) * tf.constant(rng.standard_normal((8, 1, 8)), tf.float32)
        ),
    }

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(first, name="a")
            self.b = tf.Variable(second, name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.nn.relu(bodies[case](self, x))}

    model = Model()
    tf.saved_model.save(model, path, signatures={"serving_default": model.serve})
    return path, first, scale


@pytest.mark.parametrize(
    "case,streamed",
    [
        ("vector_after", 1),
        ("scalar_first", 1),
        ("two_convs_one_scale", 2),
        ("ones", 0),
        ("two_muls", 0),
        ("scale_before", 0),
        ("division", 0),
        ("not_per_channel", 0),
    ],
)
def test_conv_times_constant_folds_on_the_stream(tmp_path, caplog, case, streamed):
    """``conv(x, W) * C``: grappler's push-down of C into W is done on the streamed W
    (``stream_folds``), byte-identical to grappler's fold of the loaded W; where grappler's
    conditions do not hold, W is read in and grappler decides, also identically."""
    src, _, _ = _conv_scale_model(str(tmp_path / "sm"), case)
    for label, opts in QUANTIZATIONS.items():
        assert _same_both_ways(src, tmp_path, caplog, 64, label, **opts) == streamed, label


def test_grappler_multiply_flushes_denormals():
    """Hand-computed: x86 FTZ/DAZ semantics, sign kept, the constant broadcast per channel."""
    from tfjsconv.graph.stream_folds import grappler_multiply

    tiny = np.finfo(np.float32).tiny
    value = np.array([[1e-39, -1e-39, 2.0], [1e-20, -1e-20, 3.0]], np.float32)
    got = grappler_multiply(value.copy(), np.array([1e30, 1e-20, 0.5], np.float32), False)
    # 1e-39 is subnormal: read as 0 (not 1e-9); 1e-20 * 1e-20 underflows to -0.
    expected = np.array([[0.0, -0.0, 1.0], [1e10, -0.0, 1.5]], np.float32)
    assert got.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    assert not ((np.abs(got) < tiny) & (got != 0)).any()


@pytest.mark.tfjs
def test_streamed_models_run_in_tfjs(tfjs, tmp_path, caplog):
    """Streamed outputs run in tfjs 4.22 with the source model's results: a conv filter
    folded with its scale on the stream, a TF1 SavedModel of ref variables, and a Keras 3
    MobileNetV2 (batch norms folded on the stream).  Bound (``tolerances``): 4x the gap
    between TF's float32 run and the same computation in float64."""
    import coverage_corpus as cc
    import keras
    import tensorflow as tf
    import tolerances

    rng = np.random.default_rng(5)

    def check(out: Path, x: np.ndarray, want32: np.ndarray, want64) -> None:
        bound = tolerances.twin_tolerance([want32], None if want64 is None else [want64])
        (got,) = tfjs.predict(out, [x], kind="graph")
        assert tolerances.max_diff(got, want32) <= bound, (out.name, bound)

    src, first, scale = _conv_scale_model(str(tmp_path / "conv"), "vector_after")
    assert _convert(src, tmp_path / "conv_out", True, 64, caplog) == 1
    x = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    want32 = gm.predict_saved_model(src, {"x": x})["y"]
    conv64 = tf.nn.conv2d(x.astype(np.float64), first.astype(np.float64), 1, "SAME").numpy()
    check(tmp_path / "conv_out", x, want32, np.maximum(conv64 * scale.astype(np.float64), 0.0))

    src = _tf1_saved_model(str(tmp_path / "tf1"), resource=False)
    assert _convert(src, tmp_path / "tf1_out", True, 64, caplog) == 2
    x = rng.standard_normal((3, 32)).astype(np.float32)
    want32 = gm.predict_saved_model(src, {"x": x}, tags=["serve"])["y"]
    reader = tf.train.load_checkpoint(os.path.join(src, "variables", "variables"))
    h = x.astype(np.float64)
    for key in ("w0", "w1"):
        h = np.tanh(h @ reader.get_tensor(key).astype(np.float64))
    check(tmp_path / "tf1_out", x, want32, h)

    src = km.k3_mobilenet_v2_keras(str(tmp_path))
    assert _convert_h5(src, tmp_path / "k3_out", True, 4096, caplog)
    model = keras.saving.load_model(src)
    x = rng.standard_normal((1, 96, 96, 3)).astype(np.float32)
    (want64,) = cc.float64_predictions(keras, model, [x]) or [None]
    check(tmp_path / "k3_out", x, model(x).numpy(), want64)


def _convert_h5(src: str, out: Path, stream: bool, min_bytes: int, caplog, **opts) -> bool:
    """keras h5 -> graph; True if weights were written from the h5 file (streamed)."""
    out.mkdir()
    options = ConversionOptions(input_format="keras", output_format="tfjs_graph_model", **opts)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tfjsconv.graph"):
        keras_graph.keras_to_graph(src, str(out), options, streaming_enabled=stream, min_bytes=min_bytes)
    return _streamed_count(caplog) > 0


@pytest.mark.parametrize(
    "builder,streams",
    [
        (km.tfk_mlp, True),
        (km.tfk_cnn, True),  # BatchNorm folded into the stream, depthwise conv, skip connection
        (km.tfk_lstm, False),  # loop-body weights are read at freeze time (as for SavedModels)
        (km.tfk_nested, True),  # a Sequential inside a functional model
        (km.k3_cnn_h5, True),  # Keras 3's h5 layout: tf_keras cannot build it, Keras 3 does
    ],
)
def test_keras_h5_streams_byte_identically(tmp_path, caplog, builder, streams):
    """tf_keras h5 -> graph: weights read from the h5 datasets when written give the
    bytes of the full load (``tf_keras.models.load_model``), for every output dtype."""
    src = builder(str(tmp_path))
    for label, opts in QUANTIZATIONS.items():
        streamed = _convert_h5(src, tmp_path / f"{label}_streamed", True, 64, caplog, **dict(opts))
        assert streamed == streams, label
        _convert_h5(src, tmp_path / f"{label}_loaded", False, 64, caplog, **dict(opts))
        assert _digest(tmp_path / f"{label}_streamed") == _digest(tmp_path / f"{label}_loaded")


@pytest.mark.parametrize(
    "builder",
    [km.k3_cnn_keras, km.k3_seq_keras, km.k3_zoo_keras, km.k3_nested_keras, km.k3_multi_keras],
)
def test_keras3_file_streams_byte_identically(tmp_path, caplog, builder):
    """Keras 3 ``.keras`` -> graph: weights read in place from the zip's model.weights.h5
    when written give the bytes of ``keras.saving.load_model``'s full load."""
    src = builder(str(tmp_path))
    for label, opts in QUANTIZATIONS.items():
        # min_bytes=32: the small models' kernels (4x3 and up) count as large.
        assert _convert_h5(src, tmp_path / f"{label}_streamed", True, 32, caplog, **dict(opts)), label
        assert not any("loading them all" in r.getMessage() for r in caplog.records)
        _convert_h5(src, tmp_path / f"{label}_loaded", False, 32, caplog, **dict(opts))
        assert _digest(tmp_path / f"{label}_streamed") == _digest(tmp_path / f"{label}_loaded")


def test_keras3_mobilenet_folds_batch_norms_on_the_stream(tmp_path, caplog):
    """Keras 3 computes a batch norm as ``x * (gamma * rsqrt(var + eps)) + ...``: grappler
    folds that scale into the conv filter before it, and so does the streamed conversion
    (the scale evaluated by TensorFlow, the product on the stream), byte for byte."""
    from tfjsconv.graph import weight_stash

    src = km.k3_mobilenet_v2_keras(str(tmp_path))
    min_bytes = weight_stash.DEFAULT_MIN_BYTES
    assert _convert_h5(src, tmp_path / "streamed", True, min_bytes, caplog)
    streamed = _streamed_count(caplog)
    _convert_h5(src, tmp_path / "loaded", False, min_bytes, caplog)
    assert _digest(tmp_path / "streamed") == _digest(tmp_path / "loaded")
    model = json.loads((tmp_path / "streamed" / "model.json").read_text())
    merged = [n["name"] for n in model["modelTopology"]["node"] if n["name"].endswith("/merged_input")]
    assert len(merged) >= 10 and streamed >= 10, (len(merged), streamed)


def test_keras_h5_mobilenet_streams_byte_identically(tmp_path, caplog):
    src = km.mobilenet_v2_h5(str(tmp_path), alpha=0.35, size=96)
    from tfjsconv.graph import weight_stash

    assert _convert_h5(src, tmp_path / "streamed", True, weight_stash.DEFAULT_MIN_BYTES, caplog)
    _convert_h5(src, tmp_path / "loaded", False, weight_stash.DEFAULT_MIN_BYTES, caplog)
    assert _digest(tmp_path / "streamed") == _digest(tmp_path / "loaded")


def test_layers_model_to_graph_streams_byte_identically(tmp_path, caplog):
    """tfjs_layers_model -> graph goes through an h5 the converter writes; it streams too."""
    from tfjsconv import api

    src = km.tfk_cnn(str(tmp_path))
    api.convert(src, str(tmp_path / "layers"), ConversionOptions(input_format="keras"))
    model_json = str(tmp_path / "layers" / "model.json")
    outputs = {}
    for stream in (True, False):
        out = tmp_path / f"graph_{stream}"
        out.mkdir()
        options = ConversionOptions(input_format="tfjs_layers_model", output_format="tfjs_graph_model")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tfjsconv.graph"):
            chained.layers_to_graph(model_json, str(out), options, streaming_enabled=stream, min_bytes=64)
        assert (_streamed_count(caplog) > 0) == stream
        assert not any("loading them all" in r.getMessage() for r in caplog.records)
        outputs[stream] = _digest(out)
    assert outputs[True] == outputs[False]


def test_writer_holds_one_lazy_weight_at_a_time(tmp_path):
    """``write_weights`` reads a lazy weight when it writes it and drops it after."""
    alive = []

    class Lazy:
        def __init__(self, value: np.ndarray):
            self._value, self.shape, self.dtype = value, value.shape, value.dtype

        @property
        def size(self) -> int:
            return int(self._value.size)

        def read(self) -> np.ndarray:
            alive[:] = [r for r in alive if r() is not None]
            assert not alive, "a previous lazy weight is still referenced"
            import weakref

            copy = self._value.copy()
            alive.append(weakref.ref(copy))
            return copy

    values = [np.random.default_rng(i).standard_normal((50, 7)).astype(np.float32) for i in range(4)]
    group = [(f"w{i}", Lazy(v)) for i, v in enumerate(values)]
    manifest = weights.write_weights(
        [group], str(tmp_path), shard_size_bytes=1000, quantization={"uint8": ["w1"]}
    )
    (tmp_path / "eager").mkdir()
    eager = weights.write_weights(
        [[(f"w{i}", v) for i, v in enumerate(values)]],
        str(tmp_path / "eager"),
        shard_size_bytes=1000,
        quantization={"uint8": ["w1"]},
    )
    assert manifest == eager
    for name in manifest[0]["paths"]:
        assert (tmp_path / name).read_bytes() == (tmp_path / "eager" / name).read_bytes()


def test_sliced_quantization_equals_whole_array(monkeypatch):
    rng = np.random.default_rng(3)
    data = (rng.standard_normal((301, 17)) * 3).astype(np.float32)
    whole = {d: quantization.quantize(data, d) for d in ("uint8", "uint16")}
    monkeypatch.setattr(quantization, "_CHUNK", 64)
    for dtype, (stored, meta) in whole.items():
        sliced, sliced_meta = quantization.quantize(data, dtype)
        assert sliced_meta == meta
        np.testing.assert_array_equal(sliced, stored)
    bad = data.copy()
    bad[300, 16] = np.nan  # in the last slice
    with pytest.raises(ConversionError, match="NaN or Infinity"):
        quantization.quantize(bad, "uint8")


def test_graph_over_two_gib_is_a_one_line_error(monkeypatch):
    """Protobuf cannot copy a GraphDef over 2 GiB (it used to crash in grappler's
    MergeFrom with a DecodeError traceback)."""

    class Huge:
        def ByteSize(self) -> int:
            return 2**31 + 5

    with pytest.raises(ConversionError) as err:
        streaming.check_graph_size(Huge(), "graph handed to grappler")
    assert "\n" not in str(err.value) and "2 GiB" in str(err.value)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("TFJSCONV_LARGE_TESTS") != "1", reason="builds a 4.8 GB model: set TFJSCONV_LARGE_TESTS=1"
)
def test_beyond_ram_uint8(tmp_path):
    """4.8 GB of weights -> uint8 under a 3 GB address-space cap; every tensor checked."""
    root = Path(os.environ.get("TFJSCONV_LARGE_DIR", str(tmp_path)))
    src = root / "sm_4.8_beyond_ram"
    out = root / "out_4.8_beyond_ram"
    streaming_models.build(str(src), 16, 8660, "plain")
    env = dict(os.environ, PYTHONPATH=str(REPO / "converter"), TF_CPP_MIN_LOG_LEVEL="3")
    try:
        res = subprocess.run(
            [
                "prlimit",
                f"--as={3 * 2**30}",
                "--",
                sys.executable,
                "-m",
                "tfjsconv.cli",
                "--input_format=tf_saved_model",
                "--output_format=tfjs_graph_model",
                "--quantize_uint8",
                "--quiet",
                str(src),
                str(out),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert streaming_models.check(str(out), str(src)).startswith("ok: 32/32")
    finally:
        import shutil

        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------- layers paths


def test_lazy_shard_reader_equals_eager_reader(tmp_path):
    """layers -> layers reads each weight from the shards when it writes it: same values
    and dtypes as ``read_weights``, and the same errors for bad shard sizes."""
    rng = np.random.default_rng(5)
    group = [
        ("a", rng.standard_normal((30, 7)).astype(np.float32)),
        ("b", rng.integers(-5, 5, (11,)).astype(np.int32)),
        ("c", rng.standard_normal((4, 4)) > 0),
        ("d", rng.standard_normal((9, 3)).astype(np.float32)),
        ("e", rng.standard_normal((5,)).astype(np.float32)),
    ]
    manifest = weights.write_weights(
        [group[:3], group[3:]],
        str(tmp_path),
        shard_size_bytes=100,
        quantization={"uint8": ["d"], "float16": ["e"]},
    )
    eager = weights.read_weights(manifest, str(tmp_path))
    lazy = weights.read_weights_lazily(manifest, str(tmp_path))
    assert [n for n, _ in lazy] == [n for n, _ in eager]
    for (_, want), (_, got) in zip(eager, lazy, strict=False):
        value = got.read()
        assert value.dtype == want.dtype == got.dtype and value.shape == want.shape == got.shape
        np.testing.assert_array_equal(value, want)
    last = tmp_path / manifest[1]["paths"][-1]
    last.write_bytes(last.read_bytes() + b"\0")
    with pytest.raises(ConversionError, match="shard too long"):
        weights.read_weights_lazily(manifest, str(tmp_path))
    last.write_bytes(last.read_bytes()[:-2])
    with pytest.raises(ConversionError, match="truncated"):
        weights.read_weights_lazily(manifest, str(tmp_path))


def test_keras3_zip_weights_are_read_in_place(tmp_path):
    """.keras -> layers: a stored model.weights.h5 is read in place inside the zip, large
    weights when written (``H5Weight`` of the member); a recompressed archive is read
    from memory.  Both give Keras's own weights and the same layers model."""
    import zipfile

    import keras

    from tfjsconv import api
    from tfjsconv.layers import h5_files, keras_files

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((200,), name="x"), keras.layers.Dense(100, name="d")])
    stored = tmp_path / "m.keras"
    model.save(stored)
    deflated = tmp_path / "deflated.keras"
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    want = model.get_weights()
    for path, lazy in ((stored, True), (deflated, False)):
        ((_, weights),) = keras_files.read_keras_zip(str(path)).layers
        kernel, bias = (w for _, w in weights)
        assert isinstance(kernel, h5_files.H5Weight) == lazy  # 80 KB kernel
        assert isinstance(bias, np.ndarray)  # 400 B bias: read now
        np.testing.assert_array_equal(kernel.read() if lazy else kernel, want[0])
        np.testing.assert_array_equal(bias, want[1])
        api.convert(str(path), str(tmp_path / f"out_{lazy}"), ConversionOptions(input_format="keras_keras"))
    assert _digest(tmp_path / "out_True") == _digest(tmp_path / "out_False")


def test_keras_saved_model_to_layers_streams(tmp_path, monkeypatch):
    """keras_saved_model -> layers: loaded without its checkpoint, each layer's weights
    copied from the checkpoint as the h5 writer asks; same bytes as the full load."""
    from tfjsconv import api
    from tfjsconv.layers import tf_keras_io

    outputs = {}
    original = tf_keras_io._stream_to_h5
    for name in ("cnn_bn", "lstm"):
        src, _ = getattr(gm, name)(str(tmp_path))
        streamed = []
        monkeypatch.setattr(
            tf_keras_io,
            "_stream_to_h5",
            lambda *a, streamed=streamed: streamed.append(original(*a)) or streamed[-1],
        )
        options = ConversionOptions(input_format="keras_saved_model", output_format="tfjs_layers_model")
        api.convert(src, str(tmp_path / f"{name}_streamed"), options)
        assert streamed == [True], name
        monkeypatch.setattr(tf_keras_io, "_stream_to_h5", lambda *a: False)
        api.convert(src, str(tmp_path / f"{name}_loaded"), options)
        outputs[name] = (_digest(tmp_path / f"{name}_streamed"), _digest(tmp_path / f"{name}_loaded"))
    for name, (streamed_files, loaded_files) in outputs.items():
        assert streamed_files == loaded_files, name


def test_h5_weights_are_read_when_written(tmp_path):
    """h5 -> layers: large datasets are ``H5Weight``s whose values equal the eager read."""
    import tf_keras

    from tfjsconv.layers import h5_files, keras_files

    gm._seed()
    inp = tf_keras.Input((200,), name="x")
    out = tf_keras.layers.Dense(100, name="d")(inp)
    path = str(tmp_path / "m.h5")
    tf_keras.Model(inp, out).save(path)
    eager = keras_files.read_h5(path)
    lazy = keras_files.read_h5(path, lazy=True)
    ((_, eager_ws),) = eager.layers
    ((_, lazy_ws),) = lazy.layers
    assert isinstance(lazy_ws[0][1], h5_files.H5Weight)  # 80 KB kernel
    assert isinstance(lazy_ws[1][1], np.ndarray)  # 400 B bias: read now
    for (n1, a), (n2, b) in zip(eager_ws, lazy_ws, strict=False):
        assert n1 == n2
        np.testing.assert_array_equal(a, b.read() if isinstance(b, h5_files.H5Weight) else b)
