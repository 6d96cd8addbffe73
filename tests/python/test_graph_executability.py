"""Models with loops and conds under the default flags, and the conversion-time check
that mirrors tfjs's graph executor (``tfjsconv.graph.executability``).

Ground truth is TensorFlow's own prediction and the real tfjs 4.22 runtime: every
default conversion here must run in tfjs and match TF; the check's verdict on a graph
is compared with what tfjs actually does with that graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.graph import executability, optimize, rewrites
from tfjsconv.options import ConversionOptions

# float32 loops of a few steps: TF and tfjs agree to ~1e-7 here (measured: LSTM 3.5e-9,
# GRU 6e-8, tanh loop 6e-8); 1e-5 is float32's 2^-17 relative spacing times the ~O(1)
# outputs, far below any wrong-branch or wrong-iteration error (O(0.1) or more).
TOL = 1e-5


def _tf():
    import tensorflow as tf

    return tf


def _node(name, op, inputs=(), **attrs):
    from tensorflow.core.framework import node_def_pb2

    node = node_def_pb2.NodeDef(name=name, op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return node


def _graph(*nodes):
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.node.extend(nodes)
    return graph


def _sig(inputs, outputs):
    return {
        "inputs": {n: {"name": n + ":0"} for n in inputs},
        "outputs": {n: {"name": n + ":0"} for n in outputs},
    }


# ------------------------------------------------------------ the check, rule by rule


def test_plain_graph_passes():
    g = _graph(_node("x", "Placeholder"), _node("w", "Const"), _node("y", "MatMul", ["x", "w"]))
    assert executability.model_problems(g, _sig(["x"], ["y"])) == []


def test_placeholder_that_is_not_an_input_is_refused():
    g = _graph(_node("x", "Placeholder"), _node("extra", "Placeholder"), _node("y", "AddV2", ["x", "extra"]))
    (problem,) = executability.model_problems(g, _sig(["x"], ["y"]))
    assert (problem.node, problem.op) == ("extra", "Placeholder")
    with pytest.raises(ConversionError, match=r"node 'extra' \(Placeholder\) is a placeholder that is not"):
        executability.check_model(g, _sig(["x"], ["y"]))


def test_signature_without_inputs_feeds_every_placeholder():
    """tfjs's rule for frozen models (signature with outputs only)."""
    g = _graph(_node("x", "Placeholder"), _node("extra", "Placeholder"), _node("y", "AddV2", ["x", "extra"]))
    assert executability.model_problems(g, {"outputs": {"y": {"name": "y"}}}) == []


def test_dangling_reference_is_refused():
    g = _graph(_node("x", "Placeholder"), _node("y", "Relu", ["x", "^gone"]))
    (problem,) = executability.model_problems(g, _sig(["x"], ["y"]))
    assert "reads '^gone', which is not in the graph" in problem.reason


def test_control_input_from_switch_is_refused_with_the_alternative():
    g = _graph(
        _node("x", "Placeholder"),
        _node("p", "Placeholder"),
        _node("s", "Switch", ["x", "p"]),
        _node("t", "Identity", ["s:1"]),
        _node("n", "NoOp", ["^s"]),
        _node("y", "Identity", ["t", "^n"]),
    )
    problems = executability.model_problems(g, _sig(["x", "p"], ["y"]))
    assert [(p.node, p.op) for p in problems] == [("n", "NoOp")]
    assert "--control_flow_v2=True" in problems[0].alternative


def test_cycle_without_merge_is_refused():
    g = _graph(_node("x", "Placeholder"), _node("a", "AddV2", ["x", "b"]), _node("b", "Relu", ["a"]))
    (problem,) = executability.model_problems(g, _sig(["x"], ["b"]))
    assert "never gets all its inputs" in problem.reason


def test_loop_through_merge_passes_and_init_nodes_are_seeded():
    g = _graph(
        _node("x", "Placeholder"),
        _node("table", "HashTableV2"),
        _node("enter", "Enter", ["x"]),
        _node("merge", "Merge", ["enter", "next"]),
        _node("cond", "LoopCond", ["merge"]),
        _node("sw", "Switch", ["merge", "cond"]),
        _node("body", "Relu", ["sw:1"]),
        _node("next", "NextIteration", ["body"]),
        _node("exit", "Exit", ["sw"]),
        _node("y", "Identity", ["exit", "^table"]),
    )
    assert executability.model_problems(g, _sig(["x"], ["y"])) == []


def test_missing_library_function_is_refused():
    from tensorflow.core.framework import attr_value_pb2

    func = attr_value_pb2.AttrValue(func=attr_value_pb2.NameAttrList(name="body_fn"))
    g = _graph(_node("x", "Placeholder"), _node("w", "StatelessWhile", ["x"], cond=func, body=func))
    problems = executability.model_problems(g, _sig(["x"], ["w"]))
    assert [p.reason for p in problems] == ["runs function 'body_fn', which the model does not contain"] * 2


# ------------------------------------------------------- the Switch control rewrite


def test_switch_control_inputs_rewrite_is_what_tf_means():
    g = _graph(
        _node("x", "Placeholder"),
        _node("p", "Placeholder"),
        _node("c", "Const"),
        _node("s", "Switch", ["x", "p"]),
        _node("s2", "Switch", ["s:1", "p", "^c"]),
        _node("n", "NoOp", ["^s", "^s2"]),
        _node("y", "Identity", ["s2:1", "^n"]),
    )
    out = rewrites.switch_control_inputs(g, keep=["y"])
    nodes = {n.name: n for n in out.node}
    # ^s -> its inputs; ^s2 -> its inputs, where s:1 is read through an Identity.
    assert list(nodes["n"].input) == ["^x", "^p", "^s/output_1_ready", "^c"]
    assert list(nodes["s/output_1_ready"].input) == ["s:1"]
    assert [n.name for n in out.node].index("s/output_1_ready") == [n.name for n in out.node].index("s") + 1
    assert executability.model_problems(out, _sig(["x", "p"], ["y"])) == []
    assert rewrites.switch_control_inputs(out) is out  # nothing left to do: no copy


# ----------------------------------------------------------------- real models


def _while_cond_module(root: Path):
    tf = _tf()

    class Loop(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(3).standard_normal((3, 3)).astype(np.float32) * 0.5)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x):
            def body(i, h):
                return i + 1, tf.tanh(tf.matmul(h, self.w))

            _, h = tf.while_loop(lambda i, h: i < 4, body, [tf.constant(0), x])
            y = tf.cond(tf.reduce_sum(h) > 0, lambda: h * 2.0, lambda: h - 1.0)
            return {"y": y}

    module = Loop()
    path = str(root / "while_sm")
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(8)]
    # Inputs for both branches of the cond (the sign of the loop's result decides).
    pos = next(x for x in feeds if float(tf.reduce_sum(module(x)["y"])) > 0)
    neg = next(x for x in feeds if float(tf.reduce_sum(module(x)["y"])) < 0)
    return path, {name: (x, module(x)["y"].numpy()) for name, x in (("true", pos), ("false", neg))}


def _keras_rnn(root: Path, kind: str):
    """(source, input format, x, Keras prediction) for a recurrent model."""
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    if kind.startswith("keras3"):  # the reference and tfjsconv before this fix: "Cannot compute the outputs"
        import keras

        keras.utils.set_random_seed(3)
        inp = keras.Input((6, 3), name="seq")
        layer = keras.layers.LSTM(4) if "lstm" in kind else keras.layers.GRU(4)
        model = keras.Model(inp, keras.layers.Dense(2)(layer(inp)))
        if kind.endswith("export"):
            path = str(root / f"{kind}_sm")
            model.export(path, verbose=False)
            return path, "tf_saved_model", x, np.asarray(model(x))
        path = str(root / f"{kind}.keras")
        model.save(path)
        return path, "keras_keras", x, np.asarray(model(x))
    import tf_keras as k

    k.utils.set_random_seed(1)
    if kind == "embedding_lstm":  # Sequential, saved without an InputLayer, variable length
        model = k.Sequential([k.layers.Embedding(20, 4, mask_zero=True), k.layers.LSTM(5), k.layers.Dense(2)])
        model.build((None, None))
        x = np.random.default_rng(0).integers(0, 20, (2, 7)).astype(np.float32)
    else:
        inp = k.Input((6, 3), name="seq")
        model = k.Model(inp, k.layers.Dense(2)(k.layers.GRU(4)(inp)))  # reset_after=True (Keras default)
    path = str(root / f"{kind}.h5")
    model.save(path)
    return path, "keras", x, model(x).numpy()


def _convert(src, out: Path, fmt: str, **opts) -> dict:
    api.convert(src, str(out), ConversionOptions(input_format=fmt, output_format="tfjs_graph_model", **opts))
    return json.loads((out / "model.json").read_text())


def _ops(model: dict):
    return {n["op"] for n in model["modelTopology"]["node"]}


@pytest.mark.tfjs
def test_while_loop_and_cond_run_with_default_flags(tfjs, tmp_path):
    path, cases = _while_cond_module(tmp_path)
    lowered = _convert(path, tmp_path / "v1", "tf_saved_model")
    assert {"Enter", "Merge", "Switch", "NextIteration"} <= _ops(lowered)  # default: lowered control flow
    functional = _convert(path, tmp_path / "v2", "tf_saved_model", control_flow_v2=True)
    assert {"While", "StatelessIf"} & _ops(functional) and "Switch" not in _ops(functional)
    for branch, (x, want) in sorted(cases.items()):
        for out in ("v1", "v2"):
            (got,) = tfjs.predict(tmp_path / out, {"x": x}, kind="graph")
            np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL, err_msg=f"{out} {branch} branch")


@pytest.mark.tfjs
def test_check_predicts_what_tfjs_does_without_the_rewrite(tfjs, tmp_path, monkeypatch):
    """Without the Switch rewrite, the lowered loop is what the reference writes: tfjs
    fails on it, and the check refuses it with the alternative."""
    path, cases = _while_cond_module(tmp_path)
    monkeypatch.setattr(optimize.rewrites, "switch_control_inputs", lambda g, keep=(): g)
    with pytest.raises(ConversionError, match=r"control input from Switch .*--control_flow_v2=True"):
        _convert(path, tmp_path / "refused", "tf_saved_model")
    assert not (tmp_path / "refused").exists()
    monkeypatch.setattr(executability, "check_model", lambda *a, **k: None)
    _convert(path, tmp_path / "unchecked", "tf_saved_model")
    x, _ = cases["true"]
    with pytest.raises(Exception, match="Cannot compute the outputs"):
        tfjs.predict(tmp_path / "unchecked", {"x": x}, kind="graph")


@pytest.mark.tfjs
@pytest.mark.parametrize("kind", ["embedding_lstm", "gru", "keras3_lstm", "keras3_gru", "keras3_lstm_export"])
def test_keras_recurrent_models_run_with_default_flags(tfjs, tmp_path, kind):
    path, fmt, x, want = _keras_rnn(tmp_path, kind)
    for flags in ({}, {"control_flow_v2": True}):
        out = tmp_path / f"out{len(flags)}"
        _convert(path, out, fmt, **flags)
        (got,) = tfjs.predict(out, [x], kind="graph")
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL, err_msg=str(flags))
