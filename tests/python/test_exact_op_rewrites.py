"""Ops tfjs 4.22 lacks, rewritten exactly (``graph/rewrites/exact_op_rewrites.py``).

Each rewrite is checked three ways: the rewritten graph computes what the original op
computes in TensorFlow (float64, extreme values included); Keras 3 models that emit the
op convert with default flags and run in the real tfjs runtime (cpu and wasm) with
Keras's predictions; and the table in docs/graph-optimizations.md is the one the module describes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfjsconv import api
from tfjsconv.graph import ops as op_list
from tfjsconv.graph.rewrites import EXACT_REWRITES, exact_op_rewrites
from tfjsconv.graph.rewrites.exact_op_rewrites import rewrite_table_markdown
from tfjsconv.options import ConversionOptions

REPO = Path(__file__).resolve().parents[2]
# tfjs computes Erf with Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, tfjs-backend-cpu
# erf kernel), TF with a correctly rounded float32 erf.
ERF_APPROXIMATION = 1.5e-7


def _graph_of(op: str, dtype):
    import tensorflow as tf

    fn = {"Erfc": tf.math.erfc, "Softsign": tf.nn.softsign}[op]
    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec([None], dtype))
    return concrete.graph.as_graph_def(), concrete.inputs[0].name, concrete.outputs[0].name


def _run(graph_def, feed_name, fetch, x):
    return _run_feeds(graph_def, fetch, {feed_name: x})


def _run_feeds(graph_def, fetch, feeds):
    import tensorflow as tf

    with tf.Graph().as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session() as session:
            return session.run(fetch, feeds)


@pytest.mark.parametrize("op", ["Erfc", "Softsign"])
def test_rewrite_computes_the_op(op):
    import tensorflow as tf

    for dtype, np_dtype in ((tf.float64, np.float64), (tf.float32, np.float32)):
        # 1 - erf(x) and x / (1 + |x|) round once or twice more than the fused kernel:
        # within 2 ulps of the largest result (|erfc| <= 2, |softsign| < 1).
        tol = 2 * float(np.spacing(np_dtype(2)))
        graph_def, feed, fetch = _graph_of(op, dtype)
        x = np.concatenate([np.linspace(-6, 6, 241), [0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 1e30, -1e30]])
        x = x.astype(np_dtype)
        want = _run(graph_def, feed, fetch, x)
        assert op in op_list.graph_ops(graph_def)
        rewritten = exact_op_rewrites(graph_def)
        assert rewritten and op not in op_list.graph_ops(graph_def)
        assert not op_list.unsupported_ops([graph_def], strip_debug_ops=True)
        got = _run(graph_def, feed, fetch, x)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=str(dtype))


def _batch_norm_graph(op: str, data_format: str, shape):
    """A training-mode batch norm (``is_training`` left to the op's default, True, for V1)."""
    import tensorflow as tf

    channels = shape[1] if data_format.startswith("NC") else shape[-1]
    rng = np.random.default_rng(5)
    scale = rng.uniform(0.5, 2, channels).astype(np.float32)
    offset = rng.standard_normal(channels).astype(np.float32)
    # The mean/variance inputs are ignored in training mode: give wrong ones.
    stats = np.full(channels, 7.0, np.float32)
    raw = {
        "FusedBatchNorm": tf.raw_ops.FusedBatchNorm,
        "FusedBatchNormV2": tf.raw_ops.FusedBatchNormV2,
        "FusedBatchNormV3": tf.raw_ops.FusedBatchNormV3,
    }[op]
    extra = {} if op == "FusedBatchNorm" else {"is_training": True}

    def fn(x):
        return raw(
            x=x,
            scale=scale,
            offset=offset,
            mean=stats,
            variance=stats,
            epsilon=1e-3,
            data_format=data_format,
            **extra,
        )[0]

    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec([None, *shape[1:]], tf.float32))
    return concrete.graph.as_graph_def(), concrete.inputs[0].name, concrete.outputs[0].name, scale, offset


@pytest.mark.parametrize(
    "op, data_format, shape",
    [
        ("FusedBatchNormV3", "NCHW", (1, 6, 7, 1)),  # tf_keras LayerNormalization's shape
        ("FusedBatchNormV3", "NHWC", (3, 4, 5, 6)),
        ("FusedBatchNormV2", "NCHW", (2, 3, 4, 5)),
        ("FusedBatchNorm", "NHWC", (2, 3, 4, 5)),
        ("FusedBatchNormV3", "NDHWC", (2, 3, 2, 4, 3)),
    ],
)
def test_training_batch_norm_rewrite_computes_tf(op, data_format, shape):
    graph_def, feed, fetch, scale, offset = _batch_norm_graph(op, data_format, shape)
    # Far from zero mean: a one-pass E[x^2] - E[x]^2 variance would lose most digits here.
    x = (100 + 3 * np.random.default_rng(6).standard_normal(shape)).astype(np.float32)
    want = _run(graph_def, feed, fetch, x)
    assert exact_op_rewrites(graph_def)
    assert not {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"} & set(op_list.graph_ops(graph_def))
    got = _run(graph_def, feed, fetch, x)
    # Hand-computed in float64: biased variance of the centered input (TF's kernel).
    axes = tuple(i for i in range(len(shape)) if i != (1 if data_format.startswith("NC") else len(shape) - 1))
    bshape = [1] * len(shape)
    bshape[1 if data_format.startswith("NC") else -1] = -1
    x64 = x.astype(np.float64)
    centered = x64 - x64.mean(axis=axes, keepdims=True)
    exact = centered / np.sqrt(
        (centered**2).mean(axis=axes, keepdims=True) + np.float32(1e-3)
    ) * scale.reshape(bshape) + offset.reshape(bshape)
    # Both float32 computations sum n <= 60 values of |x| <= ~110: the mean's error is at most
    # n * eps * 110, which normalizing divides by the standard deviation (>= 2.5 here) and
    # multiplies by the scale; then ~6 roundings of the O(1) output.
    n = int(np.prod([shape[a] for a in axes]))
    eps = float(np.finfo(np.float32).eps)
    tol = n * eps * 110 / 2.5 * float(np.abs(scale).max()) + 8 * eps * float(np.abs(exact).max())
    np.testing.assert_allclose(want, exact, rtol=0, atol=tol, err_msg="TF itself")
    np.testing.assert_allclose(got, exact, rtol=0, atol=tol, err_msg="rewritten")
    print(
        f"\n{op} {data_format}: |TF - exact| {np.abs(want - exact).max():.3g}, "
        f"|rewritten - exact| {np.abs(got - exact).max():.3g}, |rewritten - TF| {np.abs(got - want).max():.3g}"
    )


def _layer_norm64(x: np.ndarray, axes, gamma: np.ndarray, beta: np.ndarray, epsilon: float) -> np.ndarray:
    x = x.astype(np.float64)
    centered = x - x.mean(axis=axes, keepdims=True)
    return centered / np.sqrt((centered**2).mean(axis=axes, keepdims=True) + epsilon) * gamma + beta


@pytest.mark.tfjs
def test_tf_keras_layer_normalization_runs_in_tfjs(tfjs, tmp_path):
    """tf_keras LayerNormalization (fused: a training-mode FusedBatchNormV3) over two axes and
    one, from an .h5 file, in tfjs cpu and wasm against TF and a float64 hand computation."""
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    inp = tf_keras.Input((3, 4, 5), name="x")
    first = tf_keras.layers.LayerNormalization(axis=[2, 3], epsilon=1e-3)
    second = tf_keras.layers.LayerNormalization(axis=-1)
    model = tf_keras.Model(inp, second(first(inp)))
    rng = np.random.default_rng(4)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "ln.h5")
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "ln.h5"),
        str(out),
        ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
    )
    topology = json.loads((out / "model.json").read_text())["modelTopology"]
    assert not [n for n in topology["node"] if n["op"].startswith("FusedBatchNorm")]
    x = (5 + 2 * rng.standard_normal((2, 3, 4, 5))).astype(np.float32)
    want = model.predict(x, verbose=0)
    g1, b1, g2, b2 = model.get_weights()
    exact = _layer_norm64(_layer_norm64(x, (2, 3), g1, b1, np.float32(1e-3)), (3,), g2, b2, np.float32(1e-3))
    # TF's own float32 error, allowed 4x for tfjs's other kernels (as the coverage corpus).
    tol = 4 * float(np.abs(want - exact).max()) + 8 * 2.0**-23 * float(np.abs(exact).max())
    for backend in ("cpu", "wasm"):
        (got,) = tfjs.predict(out, {"x": x}, kind="graph", backend=backend)
        print(
            f"\n{backend}: |tfjs - TF| {np.abs(got - want).max():.3g}, |tfjs - exact| "
            f"{np.abs(got - exact).max():.3g}, tol {tol:.3g}"
        )
        np.testing.assert_allclose(got, exact, rtol=0, atol=tol, err_msg=backend)


def test_batch_norm_whose_statistics_are_read_is_refused():
    """Batch mean/variance outputs used: not rewritten, and the executability check refuses it."""
    import tensorflow as tf

    from tfjsconv.graph import executability

    def fn(x):
        y, mean, _var = tf.compat.v1.nn.fused_batch_norm(x, tf.ones([3]), tf.zeros([3]), is_training=True)
        return y + tf.reduce_sum(mean)

    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec([2, 2, 2, 3], tf.float32))
    graph_def = concrete.graph.as_graph_def()
    assert not exact_op_rewrites(graph_def)
    problems = executability.model_problems(graph_def, None)
    assert [p.op for p in problems] == ["FusedBatchNormV3"]
    assert "is_training=True" in problems[0].message() and "\n" not in problems[0].message()


def test_inference_batch_norm_is_left_alone():
    import tensorflow as tf

    def fn(x):
        return tf.compat.v1.nn.fused_batch_norm(
            x, tf.ones([3]), tf.zeros([3]), mean=tf.zeros([3]), variance=tf.ones([3]), is_training=False
        )[0]

    graph_def = (
        tf.function(fn).get_concrete_function(tf.TensorSpec([2, 2, 2, 3], tf.float32)).graph.as_graph_def()
    )
    assert not exact_op_rewrites(graph_def)
    assert "FusedBatchNormV3" in op_list.graph_ops(graph_def)


def _cumulative_module():
    """Cumsum/Cumprod with negative axes, exclusive and reverse (tfjs's kernels need axis >= 0),
    and a reversed bool tensor (tfjs-backend-wasm reverses int32 right, bool wrongly)."""
    import tensorflow as tf

    class Cumulative(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 3], tf.float32, name="x")])
        def __call__(self, x):
            return {
                "sum": tf.cumsum(x, axis=-1),
                "sum_rev": tf.cumsum(x, axis=-2, exclusive=True, reverse=True),
                "prod": tf.math.cumprod(x, axis=-3, reverse=True),
                "flags": tf.reverse(x > 1.0, axis=[0, 1]),
            }

    return Cumulative()


@pytest.mark.parametrize("op, axis", [("Cumsum", -1), ("Cumsum", -3), ("Cumprod", -2), ("Cumsum", 1)])
def test_cumulative_rewrite_computes_the_op(op, axis):
    import tensorflow as tf

    fn = {"Cumsum": tf.cumsum, "Cumprod": tf.math.cumprod}[op]
    concrete = tf.function(lambda x: fn(x, axis=axis, reverse=True)).get_concrete_function(
        tf.TensorSpec([None, 4, 3], tf.float32)
    )
    graph_def = concrete.graph.as_graph_def()
    x = np.random.default_rng(8).standard_normal((2, 4, 3)).astype(np.float32)
    feed, fetch = concrete.inputs[0].name, concrete.outputs[0].name
    want = _run(graph_def, feed, fetch, x)
    assert exact_op_rewrites(graph_def)
    np.testing.assert_array_equal(_run(graph_def, feed, fetch, x), want)  # same kernel, same axis


def test_bool_reverse_rewrite_computes_the_op():
    import tensorflow as tf

    concrete = tf.function(lambda x: tf.reverse(x > 0, axis=[0, 2])).get_concrete_function(
        tf.TensorSpec([None, 4, 3], tf.float32)
    )
    graph_def = concrete.graph.as_graph_def()
    x = np.random.default_rng(10).standard_normal((2, 4, 3)).astype(np.float32)
    feed, fetch = concrete.inputs[0].name, concrete.outputs[0].name
    want = _run(graph_def, feed, fetch, x)
    assert exact_op_rewrites(graph_def)
    got = _run(graph_def, feed, fetch, x)
    assert got.dtype == want.dtype == np.bool_
    np.testing.assert_array_equal(got, want)


@pytest.mark.tfjs
def test_cumulative_ops_and_bool_reverse_run_in_tfjs(tfjs, tmp_path):
    import tensorflow as tf

    module = _cumulative_module()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "sm"),
        str(out),
        ConversionOptions(input_format="tf_saved_model", output_format="tfjs_graph_model"),
    )
    x = np.random.default_rng(9).uniform(0.5, 1.5, (2, 4, 3)).astype(np.float32)
    want = {k: v.numpy() for k, v in module(tf.constant(x)).items()}
    for backend in ("cpu", "wasm"):
        got = tfjs.predict(out, {"x": x}, kind="graph", backend=backend)
        # Outputs come in signature-key order (flags, prod, sum, sum_rev). Sums of <= 4 values
        # of size <= 1.5 and products of <= 2: float32 rounding, a few ulps of 6.
        assert len(got) == len(want)
        for g, key in zip(got, sorted(want), strict=False):
            if key == "flags":
                np.testing.assert_array_equal(g.astype(bool), want[key], err_msg=backend)
            else:
                np.testing.assert_allclose(
                    g, want[key], rtol=0, atol=4 * 6 * 2.0**-23, err_msg=f"{backend} {key}"
                )


# (equation, operand shapes): Keras/KerasHub attention and EinsumDense (the first four),
# then each index grouping: no batch, batch only, outer product, full contraction, an
# index summed away in one operand, one operand (transpose, sum), output reordered.
EINSUMS = [
    ("abc,cde->abde", [(2, 5, 4), (4, 3, 6)]),
    ("abcd,cde->abe", [(2, 5, 3, 6), (3, 6, 4)]),
    ("BTNH,BSNH->BNTS", [(2, 5, 3, 4), (2, 7, 3, 4)]),
    ("BNTS,BSNH->BTNH", [(2, 3, 5, 7), (2, 7, 3, 4)]),
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ab,ab->ab", [(2, 3), (2, 3)]),
    ("i,j->ij", [(3,), (5,)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("abc,bd->ad", [(2, 3, 4), (3, 5)]),
    ("ba,ac->cb", [(3, 2), (2, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ijk->k", [(2, 3, 4)]),
]


def _einsum_function(equation: str, shapes):
    """A concrete function of ``tf.einsum(equation)`` with every dimension unknown."""
    import tensorflow as tf

    specs = [tf.TensorSpec([None] * len(shape), tf.float32) for shape in shapes]
    return tf.function(lambda *xs: tf.einsum(equation, *xs)).get_concrete_function(*specs)


@pytest.mark.parametrize(("equation", "shapes"), EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum_rewrite_computes_the_op(equation, shapes):
    concrete = _einsum_function(equation, shapes)
    graph_def = concrete.graph.as_graph_def()
    rng = np.random.default_rng(12)
    xs = [rng.standard_normal(shape) for shape in shapes]
    feeds = {t.name: x.astype(np.float32) for t, x in zip(concrete.inputs, xs, strict=True)}
    assert exact_op_rewrites(graph_def)
    assert "Einsum" not in op_list.graph_ops(graph_def)
    got = _run_feeds(graph_def, concrete.outputs[0].name, feeds)
    want = np.einsum(equation, *xs)
    # Float32 rounding of each output, a sum of n products (Higham's gamma_n bound, one
    # more rounding for the inputs): (n + 2) * 2^-24 * sum |a||b|, from the magnitudes;
    # n = the product of the dimensions of the indices not in the output.
    lhs, out = equation.split("->")
    size = {
        c: n
        for spec, shape in zip(lhs.split(","), shapes, strict=True)
        for c, n in zip(spec, shape, strict=True)
    }
    terms = int(np.prod([n for c, n in size.items() if c not in out]))
    bound = (terms + 2) * 2.0**-24 * np.einsum(equation, *(np.abs(x) for x in xs))
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= bound), float(np.max(np.abs(got - want) - bound))


def test_einsum_forms_the_rewrite_does_not_take_stay():
    """An ellipsis (its rank is unknown here) or a repeated index (a diagonal) is left to tfjs's Einsum."""
    for equation, shapes in (("...ij,jk->...ik", [(2, 3, 4), (4, 5)]), ("ii->i", [(3, 3)])):
        graph_def = _einsum_function(equation, shapes).graph.as_graph_def()
        assert exact_op_rewrites(graph_def) == []
        assert "Einsum" in op_list.graph_ops(graph_def)


def test_readme_lists_exactly_these_rewrites():
    readme = (REPO / "docs" / "graph-optimizations.md").read_text()
    assert rewrite_table_markdown() in readme
    assert len({r.op for r in EXACT_REWRITES}) == len(EXACT_REWRITES)


def _keras3(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    return keras


def _gelu_softsign_model():
    keras = _keras3(7)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="gelu", bias_initializer="random_normal")(inp)
    out = keras.layers.Dense(4, activation="softsign", bias_initializer="random_normal")(h * 3.0)
    return keras.Model(inp, out), {
        "x": np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32) * 3
    }


def _attention_model():
    """A transformer block: MultiHeadAttention, LayerNormalization, gelu feed-forward."""
    keras = _keras3(11)
    inp = keras.Input((5, 8), name="tokens")
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    h = keras.layers.LayerNormalization()(inp + attended)
    ff = keras.layers.Dense(8)(keras.layers.Dense(16, activation="gelu")(h))
    out = keras.layers.LayerNormalization()(h + ff)
    return keras.Model(inp, out), {
        "tokens": np.random.default_rng(2).standard_normal((3, 5, 8)).astype(np.float32)
    }


def _float64_spread(build, model, inputs) -> float:
    """|float32 Keras - float64 Keras| with the same weights: float32 rounding's size here."""
    import keras

    old = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        twin, _ = build()
    finally:
        keras.config.set_floatx(old[0])
        keras.config.set_dtype_policy(old[1])
    twin.set_weights([w.astype(np.float64) for w in model.get_weights()])
    (x,) = inputs.values()
    want32 = np.asarray(model(x))
    want64 = np.asarray(twin(x.astype(np.float64)))
    assert want64.dtype == np.float64
    return float(np.abs(want32.astype(np.float64) - want64).max())


@pytest.mark.tfjs
@pytest.mark.parametrize(
    "build, backends",
    [
        (_gelu_softsign_model, ("cpu", "wasm")),
        # tfjs-backend-wasm 4.22 registers no Einsum kernel: it runs the rewritten one.
        (_attention_model, ("cpu", "wasm")),
    ],
    ids=["gelu_softsign", "attention"],
)
def test_keras3_models_with_rewritten_ops_run_in_tfjs(tfjs, tmp_path, build, backends):
    model, inputs = build()
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "graph"
    api.convert(
        str(path), str(out), ConversionOptions(input_format="keras_keras", output_format="tfjs_graph_model")
    )
    want = np.asarray(model(list(inputs.values())[0]))
    # Tolerance: float32 rounding (twice the measured float32-vs-float64 spread: TF and
    # tfjs each round), plus tfjs's Erf approximation carried through at most two
    # layers of O(1) weights (outputs are LayerNorm'd / softsign'd, so O(1)).
    spread = _float64_spread(build, model, inputs)
    tol = 2 * spread + 8 * ERF_APPROXIMATION * float(np.abs(list(inputs.values())[0]).max())
    print(f"\n{build.__name__}: float32-vs-float64 spread {spread:.3g}, tolerance {tol:.3g}")
    for backend in backends:
        (got,) = tfjs.predict(out, inputs, kind="graph", backend=backend)
        print(f"{backend}: max |tfjs - Keras| {float(np.abs(got - want).max()):.3g}")
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=backend)
