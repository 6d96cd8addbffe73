"""convert_jax: Flax models -> tfjs graph models, checked against JAX in the real tfjs runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tolerances

jax = pytest.importorskip("jax")
nn = pytest.importorskip("flax.linen")
tf = pytest.importorskip("tensorflow")

from tfjsconv import jax_conversion  # noqa: E402
from tfjsconv.errors import ConversionError, UsageError  # noqa: E402
from tfjsconv.jax_conversion import convert_jax  # noqa: E402

pytestmark = pytest.mark.slow


def jax_bound(fn, *args) -> float:
    """``tolerances``' parity bound for ``fn(*args)``: JAX's float32 result against the
    same function on float64 params and inputs (``enable_x64`` only inside this call)."""
    ref32 = np.asarray(fn(*args))
    with jax.experimental.enable_x64():
        wide = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), args)
        ref64 = np.asarray(fn(*wide))
    assert ref64.dtype == np.float64, ref64.dtype
    return tolerances.twin_tolerance([ref32], [ref64])


class SmallCNN(nn.Module):
    """Conv -> relu -> avg-pool -> dense: the ops a typical vision head lowers to."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=4, kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(3)(x)


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, size=shape).astype(np.float32)


@pytest.fixture(scope="module")
def dense():
    model = nn.Dense(3)
    params = model.init(jax.random.PRNGKey(0), _rand(1, 4))
    return model, params


@pytest.fixture(scope="module")
def cnn():
    model = SmallCNN()
    params = model.init(jax.random.PRNGKey(1), _rand(1, 8, 8, 1))
    return model, params


def _ops(model_dir: Path):
    topology = json.loads((model_dir / "model.json").read_text())["modelTopology"]
    nodes = list(topology["node"])
    for fn in topology.get("library", {}).get("function", []):
        nodes.extend(fn.get("nodeDef", []))
    return {n["op"] for n in nodes}


def test_saved_model_step_uses_plain_tf_ops(dense, tmp_path):
    """The intermediate SavedModel computes what JAX computes, without XlaCallModule."""
    model, params = dense
    x = _rand(5, 4, seed=2)
    jax_conversion.jax_to_saved_model(
        model.apply,
        params,
        input_signatures=[tf.TensorSpec([5, 4], tf.float32)],
        saved_model_dir=str(tmp_path / "sm"),
    )
    fn = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    ops = {n.op for n in fn.graph.as_graph_def().node}
    for f in fn.graph.as_graph_def().library.function:
        if "grad_fn" not in f.signature.name:  # gradients never reach the frozen graph
            ops |= {n.op for n in f.node_def}
    assert not any(op.startswith("Xla") for op in ops), sorted(ops)
    (y,) = fn(tf.constant(x)).values()
    np.testing.assert_allclose(
        y.numpy(), np.asarray(model.apply(params, x)), atol=jax_bound(model.apply, params, x), rtol=0
    )


@pytest.mark.tfjs
def test_dense_fixed_batch_in_tfjs(tfjs, dense, tmp_path):
    model, params = dense
    x = _rand(2, 4, seed=3)
    out = tmp_path / "dense"
    assert convert_jax(
        model.apply, params, input_signatures=[tf.TensorSpec([2, 4], tf.float32)], model_dir=str(out)
    ) == str(out)
    assert not any(op.startswith("Xla") for op in _ops(out))
    (y,) = tfjs.predict(out, [x], kind="graph")
    np.testing.assert_allclose(
        y, np.asarray(model.apply(params, x)), atol=jax_bound(model.apply, params, x), rtol=0
    )


@pytest.mark.tfjs
def test_cnn_fixed_batch_in_tfjs(tfjs, cnn, tmp_path):
    model, params = cnn
    x = _rand(2, 8, 8, 1, seed=4)
    out = tmp_path / "cnn"
    convert_jax(
        model.apply, params, input_signatures=[tf.TensorSpec([2, 8, 8, 1], tf.float32)], model_dir=str(out)
    )
    (y,) = tfjs.predict(out, [x], kind="graph")
    np.testing.assert_allclose(
        y, np.asarray(model.apply(params, x)), atol=jax_bound(model.apply, params, x), rtol=0
    )


@pytest.mark.tfjs
def test_cnn_polymorphic_batch_in_tfjs(tfjs, cnn, tmp_path):
    model, params = cnn
    out = tmp_path / "cnn_poly"
    convert_jax(
        model.apply,
        params,
        input_signatures=[tf.TensorSpec([None, 8, 8, 1], tf.float32)],
        polymorphic_shapes=["(b, 8, 8, 1)"],
        model_dir=str(out),
    )
    signature = json.loads((out / "model.json").read_text())["signature"]
    (inp,) = signature["inputs"].values()
    assert inp["tensorShape"]["dim"][0]["size"] == "-1"
    for batch in (1, 3):
        x = _rand(batch, 8, 8, 1, seed=5 + batch)
        (y,) = tfjs.predict(out, [x], kind="graph")
        np.testing.assert_allclose(
            y, np.asarray(model.apply(params, x)), atol=jax_bound(model.apply, params, x), rtol=0
        )


@pytest.mark.tfjs
def test_uint8_quantization_passes_through(tfjs, dense, tmp_path):
    model, params = dense
    x = _rand(2, 4, seed=9)
    out = tmp_path / "dense_q"
    convert_jax(
        model.apply,
        params,
        input_signatures=[tf.TensorSpec([2, 4], tf.float32)],
        model_dir=str(out),
        quantize_uint8="*",
    )
    manifest = json.loads((out / "model.json").read_text())["weightsManifest"]
    dtypes = {
        w.get("quantization", {}).get("dtype")
        for g in manifest
        for w in g["weights"]
        if w["dtype"] == "float32"
    }
    assert dtypes == {"uint8"}
    (y,) = tfjs.predict(out, [x], kind="graph")
    # uint8 steps of the kernel (range <= 2 for Dense's lecun init, /255) times |x| <= 1, 4 terms.
    kernel = np.asarray(params["params"]["kernel"])
    step = (kernel.max() - kernel.min()) / 255
    np.testing.assert_allclose(y, np.asarray(model.apply(params, x)), atol=4 * step, rtol=0)


@pytest.mark.tfjs
def test_two_inputs_keep_their_order(tfjs, dense, tmp_path):
    """apply_fn(params, x, bias): inputs after params map to signature inputs in order."""
    model, params = dense

    def apply_fn(p, x, bias):
        return model.apply(p, x) * 2.0 + bias

    x, bias = _rand(2, 4, seed=12), _rand(2, 3, seed=13)
    out = tmp_path / "two"
    convert_jax(
        apply_fn,
        params,
        model_dir=str(out),
        input_signatures=[tf.TensorSpec([2, 4], tf.float32), tf.TensorSpec([2, 3], tf.float32)],
    )
    (y,) = tfjs.predict(out, [x, bias], kind="graph")
    np.testing.assert_allclose(
        y, np.asarray(apply_fn(params, x, bias)), atol=jax_bound(apply_fn, params, x, bias), rtol=0
    )


def test_conversion_is_byte_identical_across_runs(dense, tmp_path):
    model, params = dense
    spec = [tf.TensorSpec([2, 4], tf.float32)]
    for name in ("a", "b"):
        convert_jax(model.apply, params, input_signatures=spec, model_dir=str(tmp_path / name))
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_unknown_option_is_a_usage_error(dense, tmp_path):
    model, params = dense
    with pytest.raises(UsageError, match="unknown converter option.*quantize_int4"):
        convert_jax(
            model.apply,
            params,
            input_signatures=[tf.TensorSpec([2, 4], tf.float32)],
            model_dir=str(tmp_path / "x"),
            quantize_int4=True,
        )


def test_fixed_options_are_refused():
    with pytest.raises(UsageError, match="sets input_format itself"):
        jax_conversion.options_from_kwargs({"input_format": "keras"})


def test_options_from_kwargs_normalizes_like_the_cli():
    opts = jax_conversion.options_from_kwargs(
        {"quantize_uint8": "dense*, conv*", "quantize_float16": True, "metadata": {"m": {"a": 1}}}
    )
    assert opts.quantize_uint8 == ("dense*", "conv*")
    assert opts.quantize_float16 is True
    assert opts.metadata == (("m", {"a": 1}),)
    assert (opts.input_format, opts.output_format) == ("tf_saved_model", "tfjs_graph_model")


def test_polymorphic_shapes_length_must_match(dense, tmp_path):
    model, params = dense
    with pytest.raises(UsageError, match="polymorphic_shapes has 2 entries but there are 1"):
        jax_conversion.jax_to_saved_model(
            model.apply,
            params,
            input_signatures=[tf.TensorSpec([None, 4], tf.float32)],
            saved_model_dir=str(tmp_path / "sm"),
            polymorphic_shapes=["(b, 4)", "(b,)"],
        )


def test_too_new_jax_is_explained(monkeypatch):
    monkeypatch.setattr(jax, "__version__", "0.10.2")
    with pytest.raises(ConversionError, match="jax 0.10.2 can only export XlaCallModule"):
        jax_conversion._import_jax2tf()


def test_missing_jax_names_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jax", None)  # makes `import jax` raise ImportError
    with pytest.raises(ConversionError, match=r"convert_jax needs jax and jaxlib.*requirements/jax.in"):
        jax_conversion._import_jax2tf()
