"""Graph path: nested function calls inlined, grouped convolutions rewritten, and the
framework's own application layers resolved (``graph/rewrites/inline_calls.py``,
``graph/rewrites/grouped_convolutions.py``, ``graph/framework_layers.py``).

Every converted model runs in the real tfjs 4.22 runtime (cpu) and is compared with
TensorFlow's own prediction under ``tolerances.py``'s bound (the model's float32 run
against its float64 twin) or with a float64 hand computation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tolerances

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.graph import ops as op_list
from tfjsconv.graph.freeze import freeze_concrete_function
from tfjsconv.graph.rewrites import grouped_convolutions, inline_calls
from tfjsconv.options import ConversionOptions

CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall"}
_W = np.array([0.5, -1.25, 2.0, 0.75], np.float32)


# ------------------------------------------------------------------ nested calls


def _nested_module():
    """serve -> middle -> inner -> leaf, each a jit-compiled tf.function (freezing keeps
    those as calls): depth 3, a two-output function, a multi-output op in a body."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def leaf(x):
        return tf.nn.relu(x) - 0.5

    @tf.function(jit_compile=True)
    def inner(x):
        a, b = tf.split(x, 2, axis=-1)  # refs "split:output:1" in the body
        return a * b, leaf(a - b)

    @tf.function(jit_compile=True)
    def middle(x):
        p, q = inner(x * _W)
        r, s = inner(x + 1.0)
        return tf.concat([p + s, q * r], -1)

    class Nested(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": middle(x) * 2.0}

    return Nested()


def _nested_reference(x: np.ndarray) -> np.ndarray:
    """The module's function in float64, by hand."""
    x = x.astype(np.float64)

    def inner(v):
        a, b = v[:, :2], v[:, 2:]
        return a * b, np.maximum(a - b, 0) - 0.5

    p, q = inner(x * _W.astype(np.float64))
    r, s = inner(x + 1.0)
    return np.concatenate([p + s, q * r], -1) * 2.0


def _call_depth(graph_def) -> int:
    """How deep calls nest in a graph (1: calls only in the top-level graph)."""
    library = {f.signature.name: f for f in graph_def.library.function}

    def depth(nodes) -> int:
        called = [n.attr["f"].func.name for n in nodes if n.op in CALL_OPS]
        return max((1 + depth(library[name].node_def) for name in called), default=0)

    return depth(graph_def.node)


def _run_graph(graph_def, feed: str, fetch: str, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetch, {feed: x})


def _x(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _bound(want64: np.ndarray) -> float:
    # No float64 twin of the traced module: the ulp floor of the output scale, times
    # the ~6 roundings a value goes through (mul, sub, relu, mul, add, mul).
    return 6 * tolerances.tolerance([want64.astype(np.float32)], None)[0]


def test_nested_calls_are_inlined_on_the_protos():
    module = _nested_module()
    func = module.serve.get_concrete_function()
    frozen = freeze_concrete_function(func, control_flow_v2=False, generated_by="test")
    graph_def = frozen.graph_def
    assert _call_depth(graph_def) == 3, "freezing inlined the jit functions: the test tests nothing"
    x = _x((5, 4), 1)
    feed, fetch = func.inputs[0].name, frozen.output_nodes[0] + ":0"
    before = _run_graph(graph_def, feed, fetch, x)
    inlined = inline_calls(graph_def)
    assert len(inlined) == 1 + 2 + 2  # middle, its two inner calls, and their leaf calls
    assert not CALL_OPS & set(op_list.graph_ops(graph_def))
    assert not graph_def.library.function  # no function is referenced any more
    after = _run_graph(graph_def, feed, fetch, x)
    want = _nested_reference(x)
    np.testing.assert_allclose(before, want, rtol=0, atol=_bound(want), err_msg="TF, calls")
    np.testing.assert_allclose(after, want, rtol=0, atol=_bound(want), err_msg="TF, inlined")
    assert inline_calls(graph_def) == []  # nothing left: idempotent


def test_cyclic_calls_are_refused_not_followed():
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    fn = graph_def.library.function.add()
    fn.signature.name = "loop"
    fn.signature.input_arg.add(name="x", type=tf.float32.as_datatype_enum)
    fn.signature.output_arg.add(name="y", type=tf.float32.as_datatype_enum)
    call = fn.node_def.add(name="again", op="PartitionedCall", input=["x"])
    call.attr["f"].func.name = "loop"
    call.attr["Tin"].list.type.append(tf.float32.as_datatype_enum)
    call.attr["Tout"].list.type.append(tf.float32.as_datatype_enum)
    fn.ret["y"] = "again:output:0"
    x = graph_def.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = tf.float32.as_datatype_enum
    top = graph_def.node.add()
    top.CopyFrom(call)
    top.name, top.input[:] = "top", ["x"]
    with pytest.raises(ConversionError, match="nested deeper than 64"):
        inline_calls(graph_def)


@pytest.mark.tfjs
def test_nested_calls_in_a_saved_model_run_in_tfjs(tfjs, tmp_path):
    import tensorflow as tf

    module = _nested_module()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "sm"),
        str(out),
        ConversionOptions(input_format="tf_saved_model", output_format="tfjs_graph_model"),
    )
    topology = json.loads((out / "model.json").read_text())["modelTopology"]
    assert not CALL_OPS & {n["op"] for n in topology["node"]}
    again = tmp_path / "again"
    api.convert(
        str(tmp_path / "sm"),
        str(again),
        ConversionOptions(input_format="tf_saved_model", output_format="tfjs_graph_model"),
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files), "not reproducible"
    x = _x((3, 4), 2)
    want = _nested_reference(x)
    (got,) = tfjs.predict(out, {"x": x}, kind="graph")
    np.testing.assert_allclose(got, want, rtol=0, atol=_bound(want))


def _loop_module():
    """A while loop whose body calls a jit function that calls another."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def leaf(v):
        return tf.nn.relu(v) * 0.5

    @tf.function(jit_compile=True)
    def step(v):
        return leaf(v) + 1.0

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, step(v) - v), [tf.constant(0), x])
            return {"y": y}

    return Loop()


@pytest.mark.tfjs
@pytest.mark.parametrize("control_flow_v2", [False, True])
def test_calls_in_loop_bodies_run_in_tfjs(tfjs, tmp_path, control_flow_v2):
    """Lowered, the loop body is in the graph; with --control_flow_v2 it is a library
    function tfjs runs by name, and the calls are inlined there."""
    import tensorflow as tf

    module = _loop_module()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "sm"),
        str(out),
        ConversionOptions(
            input_format="tf_saved_model", output_format="tfjs_graph_model", control_flow_v2=control_flow_v2
        ),
    )
    topology = json.loads((out / "model.json").read_text())["modelTopology"]
    bodies = [n for f in topology.get("library", {}).get("function", []) for n in f.get("nodeDef", [])]
    assert bool(bodies) == control_flow_v2
    assert not CALL_OPS & {n["op"] for n in topology["node"] + bodies}
    x = _x((3, 4), 3)
    want = x.astype(np.float64)
    for _ in range(3):  # by hand, in float64
        want = np.maximum(want, 0) * 0.5 + 1.0 - want
    (got,) = tfjs.predict(out, {"x": x}, kind="graph")
    np.testing.assert_allclose(got, want, rtol=0, atol=_bound(want))


# ----------------------------------------------------------- grouped convolutions

# (name, layer factory, input shape); each is one output of one Keras 3 model.
_CONVS = [
    ("groups2_same", lambda L: L.Conv2D(4, 3, padding="same", groups=2), (9, 9, 8)),
    ("groups4_valid_stride2", lambda L: L.Conv2D(8, 3, strides=2, groups=4), (9, 9, 8)),
    (
        "groups4_same_stride2_bias_relu",
        lambda L: L.Conv2D(12, 3, 2, "same", groups=4, activation="relu"),
        (9, 9, 8),
    ),
    ("groups2_dilation2", lambda L: L.Conv2D(6, 3, padding="same", dilation_rate=2, groups=2), (9, 9, 8)),
    ("groups4_rect_stride", lambda L: L.Conv2D(4, (3, 1), strides=(1, 2), groups=4), (9, 9, 8)),
    ("groups_channels", lambda L: L.Conv2D(8, 3, padding="same", groups=8), (9, 9, 8)),
    ("groups_channels_x2_stride2", lambda L: L.Conv2D(16, 3, 2, "same", groups=8), (9, 9, 8)),
    (
        "groups_channels_x2_dilation2",
        lambda L: L.Conv2D(16, 3, padding="same", dilation_rate=2, groups=8),
        (9, 9, 8),
    ),
    ("depthwise_multiplier2", lambda L: L.DepthwiseConv2D(3, 2, "same", depth_multiplier=2), (9, 9, 8)),
    ("separable_multiplier2", lambda L: L.SeparableConv2D(6, 3, depth_multiplier=2), (9, 9, 8)),
    # Keras 3 decomposes strides and dilation together (SpaceToBatchND around the depthwise conv).
    (
        "depthwise_stride2_dilation2",
        lambda L: L.DepthwiseConv2D(3, 2, "same", depth_multiplier=2, dilation_rate=2),
        (11, 11, 8),
    ),
    ("conv1d_groups2", lambda L: L.Conv1D(4, 3, padding="causal", groups=2), (9, 8)),
    ("conv3d_groups2", lambda L: L.Conv3D(4, 2, groups=2), (4, 4, 4, 4)),
]


def _grouped_model():
    import keras

    keras.utils.set_random_seed(21)
    inputs, outputs = [], []
    for name, make, shape in _CONVS:
        inp = keras.Input(shape, name=f"in_{name}")
        layer = make(keras.layers)
        layer.name = name  # output names follow the layer
        inputs.append(inp)
        outputs.append(layer(inp))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(22)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.tfjs
def test_grouped_and_depth_multiplied_convolutions_run_in_tfjs(tfjs, tmp_path):
    model = _grouped_model()
    model.save(tmp_path / "groups.keras")
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "groups.keras"),
        str(out),
        ConversionOptions(input_format="keras_keras", output_format="tfjs_graph_model"),
    )
    ops = {n["op"] for n in json.loads((out / "model.json").read_text())["modelTopology"]["node"]}
    assert not CALL_OPS & ops
    assert {"Split", "DepthwiseConv2dNative"} <= ops  # both forms of the rewrite are used
    xs = [_x((2, *shape), 30 + i) for i, (_, _, shape) in enumerate(_CONVS)]
    want = [np.asarray(w) for w in model(xs)]
    # The model's own float32 error (against its float64 twin), 4x: tolerances.py.
    tol = tolerances.keras_bound(model, xs)
    got = tfjs.predict(
        out, {f"in_{name}": x for (name, _, _), x in zip(_CONVS, xs, strict=True)}, kind="graph"
    )
    names = tfjs.output_names(
        out, {f"in_{n}": x for (n, _, _), x in zip(_CONVS, xs, strict=True)}, kind="graph"
    )
    by_name = dict(zip(names, got, strict=True))
    for (name, _, _), expected in zip(_CONVS, want, strict=True):
        np.testing.assert_allclose(by_name[name], expected, rtol=0, atol=tol, err_msg=name)


def test_grouped_convolution_rewrite_computes_the_convolution():
    """On the frozen graph itself, in float64: the rewritten graph (plain TF ops) against
    the grouped convolution XLA computes; both sum the same <= 27 products per output."""
    import tensorflow as tf

    rng = np.random.default_rng(40)
    cases = [  # (input shape, filter shape, strides, padding, dilations)
        ((2, 7, 7, 8), (3, 3, 2, 8), [1, 1, 1, 1], "SAME", [1, 2, 2, 1]),
        ((2, 7, 7, 8), (3, 3, 1, 16), [1, 2, 2, 1], "VALID", [1, 1, 1, 1]),
        ((2, 6, 6, 12), (2, 3, 3, 8), [1, 1, 2, 1], "SAME", [1, 1, 1, 1]),
    ]
    for x_shape, w_shape, strides, padding, dilations in cases:
        w = rng.standard_normal(w_shape)

        @tf.function(jit_compile=True)
        def conv(x, w=w, strides=strides, padding=padding, dilations=dilations):
            return tf.raw_ops.Conv2D(input=x, filter=w, strides=strides, padding=padding, dilations=dilations)

        x = rng.standard_normal(x_shape)
        want = conv(tf.constant(x)).numpy()
        concrete = tf.function(lambda x: conv(x)).get_concrete_function(tf.TensorSpec(x_shape, tf.float64))
        graph_def = freeze_concrete_function(concrete, control_flow_v2=False, generated_by="test").graph_def
        inline_calls(graph_def)
        assert grouped_convolutions(graph_def)
        got = _run_graph(graph_def, concrete.inputs[0].name, concrete.outputs[0].name, x)
        terms = w_shape[0] * w_shape[1] * w_shape[2]
        bound = terms * float(np.finfo(np.float64).eps) * float(np.abs(x).max() * np.abs(w).max()) * terms
        np.testing.assert_allclose(got, want, rtol=0, atol=bound, err_msg=str(w_shape))


@pytest.mark.tfjs
def test_tf_keras_regnet_h5_runs_in_tfjs(tfjs, tmp_path):
    """A published architecture whose grouped convolutions (8 channels a group, up to 7
    groups here) tf_keras runs through jit-compiled calls: the whole path on real layers."""
    import tf_keras

    tf_keras.utils.set_random_seed(60)
    model = tf_keras.applications.RegNetX002(weights=None, input_shape=(32, 32, 3))
    model.save(tmp_path / "regnet.h5")
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "regnet.h5"),
        str(out),
        ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
    )
    x = _x((1, 32, 32, 3), 61) * 50  # RegNet rescales 0..255 pixels itself
    tol = tolerances.keras_bound(model, [x])
    (got,) = tfjs.predict(out, [x], kind="graph")
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=0, atol=tol)


# ------------------------------------------------------- framework application layers


def _layer_scale_model(layer_cls, **config):
    import tf_keras

    tf_keras.utils.set_random_seed(50)
    inp = tf_keras.Input((4, 4, 3), name="image")
    h = tf_keras.layers.Conv2D(8, 3, padding="same")(inp)
    out = layer_cls(**config)(h)
    model = tf_keras.Model(inp, out)
    model.set_weights(
        [np.random.default_rng(51).standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    )
    return model


@pytest.mark.tfjs
def test_allowlisted_application_layer_resolves(tfjs, tmp_path):
    from tf_keras.src.applications.convnext import LayerScale

    from tfjsconv.graph.framework_layers import framework_layer_scope

    model = _layer_scale_model(LayerScale, init_values=0.5, projection_dim=8)
    model.save(tmp_path / "scale.h5")
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "scale.h5"),
        str(out),
        ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
    )
    x = _x((2, 4, 4, 3), 52)
    with framework_layer_scope():  # the float64 twin is rebuilt from the config
        tol = tolerances.keras_bound(model, [x])
    (got,) = tfjs.predict(out, {"image": x}, kind="graph")
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=0, atol=tol)


def _custom_scale_classes():
    import tf_keras

    class MyScale(tf_keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    class LayerScale(MyScale):  # a user's class named like the framework's
        pass

    return MyScale, LayerScale


@pytest.mark.parametrize(
    "which, message", [(0, "Unknown layer: 'MyScale'"), (1, "layer class 'LayerScale' is not")]
)
def test_other_custom_classes_are_still_refused_naming_them(tmp_path, which, message):
    model = _layer_scale_model(_custom_scale_classes()[which], factor=3.0)
    path = tmp_path / "custom.h5"
    model.save(path)
    with pytest.raises(ConversionError, match=message):
        api.convert(
            str(path),
            str(tmp_path / "graph"),
            ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
        )
    assert not (tmp_path / "graph").exists()


def test_allowlist_names_only_framework_modules():
    from tfjsconv.graph.framework_layers import FRAMEWORK_LAYERS, custom_objects

    assert all(
        e.module.startswith(("keras.src.applications.", "tf_keras.src.applications."))
        for e in FRAMEWORK_LAYERS
    )
    for package in ("tf_keras", "keras"):
        objects = custom_objects(package)
        assert set(objects) == {"LayerScale", "StochasticDepth", "CustomScaleLayer"}
        for cls in objects.values():
            assert cls.__mro__[1].__module__.startswith(f"{package}.src.applications.")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "graph-optimizations.md").read_text()
    assert all(f"`{e.name}`" in docs for e in FRAMEWORK_LAYERS), "the docs list the table's classes"


# ------------------------------------------------------------------ named inputs, ecosystem classes


def _dict_input_model():
    """A Keras 3 functional model called with a dict (as KerasHub backbones are): int
    token ids -> embedding -> mean, plus float features -> dense; weights set by hand."""
    import keras

    tokens = keras.Input((4,), dtype="int32", name="token_ids")
    feats = keras.Input((3,), name="features")
    emb = keras.layers.Embedding(10, 3, name="emb")(tokens)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(emb)
    dense = keras.layers.Dense(3, name="dense")(feats)
    model = keras.Model(
        {"token_ids": tokens, "features": feats}, keras.layers.Add(name="add")([pooled, dense])
    )
    table = np.linspace(-2.0, 2.0, 30, dtype=np.float32).reshape(10, 3)
    kernel = np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5], [-0.25, 2.0, 1.0]], np.float32)
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    model.set_weights([table, kernel, bias])
    return model, (table, kernel, bias)


@pytest.mark.tfjs
def test_a_model_called_with_a_dict_converts_and_runs_in_tfjs(tfjs, tmp_path):
    model, (table, kernel, bias) = _dict_input_model()
    model.save(tmp_path / "named.keras")
    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "named.keras"),
        str(out),
        ConversionOptions(input_format="keras_keras", output_format="tfjs_graph_model"),
    )
    rng = np.random.default_rng(60)
    x = {
        "token_ids": rng.integers(0, 10, (2, 4)).astype(np.int32),
        "features": rng.standard_normal((2, 3)).astype(np.float32),
    }
    # By hand in float64: mean of the looked-up rows + features @ kernel + bias.
    want = (
        table.astype(np.float64)[x["token_ids"]].mean(axis=1)
        + x["features"] @ kernel.astype(np.float64)
        + bias
    )
    # A handful of float32 roundings per output (3-term mean, 3-term dot, 2 adds): the
    # ulp floor of the output scale covers them.
    tol = tolerances.tolerance([want.astype(np.float32)], [want])[0]
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=0, atol=tol)
    (got,) = tfjs.predict(out, x, kind="graph")
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def _foreign_class_keras(tmp_path: Path, module: str) -> Path:
    """A ``.keras`` file whose model class is named as living in ``module``."""
    import zipfile

    import keras

    inp = keras.Input((3,), name="x")
    keras.Model(inp, keras.layers.Dense(2)(inp)).save(tmp_path / "plain.keras")
    path = tmp_path / "foreign.keras"
    with zipfile.ZipFile(tmp_path / "plain.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                package = module.split(".", 1)[0]
                config.update(class_name="Backbone", module=module, registered_name=f"{package}>Backbone")
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    return path


def test_a_class_of_an_uninstalled_keras_package_is_named(tmp_path):
    path = _foreign_class_keras(tmp_path, "keras_cv.src.models.backbone")
    with pytest.raises(ConversionError) as info:
        api.convert(
            str(path),
            str(tmp_path / "graph"),
            ConversionOptions(input_format="keras_keras", output_format="tfjs_graph_model"),
        )
    message = str(info.value)
    assert "class 'Backbone' is defined in keras_cv.src.models.backbone" in message
    assert "package keras_cv is not installed" in message
    assert "\n" not in message and "Full object config" not in message
    assert not (tmp_path / "graph").exists()


def test_a_subclassed_model_is_refused_for_layers_naming_its_package(tmp_path):
    path = _foreign_class_keras(tmp_path, "keras_hub.src.models.backbone")
    with pytest.raises(
        ConversionError,
        match=r"model class 'Backbone' \(keras_hub\) is a subclassed.*convert it to tfjs_graph_model",
    ):
        api.convert(
            str(path),
            str(tmp_path / "layers"),
            ConversionOptions(input_format="keras_keras", output_format="tfjs_layers_model"),
        )
