"""index.d.ts / index.js model descriptions from model.json (tfjsconv.webpackage.typings),
on hand-written model.json fragments: what tfjs 4.22's GraphModel.predict returns
(one output: a tensor; several: an array in output order; structured outputs: a map keyed
by structuredOutputKeys) and how ranks map to tfjs' ranked tensor types."""

from __future__ import annotations

from tfjsconv.webpackage import typings


def _info(name: str, dims, dtype: str = "DT_FLOAT") -> dict:
    shape = {"unknownRank": True} if dims is None else {"dim": [{"size": str(d)} for d in dims]}
    return {"name": name, "dtype": dtype, "tensorShape": shape}


def _graph(inputs: dict, outputs: dict, **extra) -> dict:
    return {
        "format": "graph-model",
        "modelTopology": {"node": []},
        "signature": {"inputs": inputs, "outputs": outputs},
        **extra,
    }


def test_graph_signature_gives_names_dtypes_and_ranks() -> None:
    model = _graph(
        {"image": _info("image:0", [-1, 224, 224, 3]), "ids": _info("ids:0", [-1], "DT_INT32")},
        {"logits": _info("Identity:0", [-1, 1000])},
    )
    desc = typings.describe(model)
    assert desc["inputs"] == {
        "image": {"dtype": "float32", "shape": [None, 224, 224, 3]},
        "ids": {"dtype": "int32", "shape": [None]},
    }
    ts = typings.typescript(desc, "x")
    assert '"image": tf.Tensor4D;' in ts and '"ids": tf.Tensor1D;' in ts
    assert "predict(inputs: Inputs, config?: tf.ModelPredictConfig): tf.Tensor2D;" in ts
    assert (
        'readonly "image": { readonly dtype: "float32"; readonly shape: readonly [null, 224, 224, 3] };' in ts
    )


def test_several_outputs_are_a_tuple_and_structured_outputs_a_map() -> None:
    outputs = {"a": _info("a:0", [2]), "b": _info("b:0", None)}
    plain = typings.typescript(typings.describe(_graph({"x": _info("x:0", [])}, outputs)), "x")
    assert "predict(inputs: Inputs, config?: tf.ModelPredictConfig): [tf.Tensor1D, tf.Tensor];" in plain
    assert '"x": tf.Scalar;' in plain
    structured = _graph(
        {"x": _info("x:0", [1])}, outputs, userDefinedMetadata={"structuredOutputKeys": ["b", "a"]}
    )
    ts = typings.typescript(typings.describe(structured), "x")
    assert (
        'predict(inputs: Inputs, config?: tf.ModelPredictConfig): { "b": tf.Tensor; "a": tf.Tensor; };' in ts
    )


def test_graph_without_signature_uses_placeholders() -> None:
    node = {
        "name": "x",
        "op": "Placeholder",
        "attr": {"dtype": {"type": "DT_BOOL"}, "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "3"}]}}},
    }
    desc = typings.describe({"format": "graph-model", "modelTopology": {"node": [node]}})
    assert desc["inputs"] == {"x": {"dtype": "bool", "shape": [None, 3]}} and desc["outputs"] == {}
    assert "tf.Tensor | tf.Tensor[]" in typings.typescript(desc, "x")


def test_layers_inputs_and_sequential_output() -> None:
    layers = [
        {
            "class_name": "InputLayer",
            "config": {"name": "in", "batch_input_shape": [None, 4], "dtype": "float32"},
        },
        {"class_name": "Dense", "config": {"name": "probs"}},
    ]
    model = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"layers": layers}}},
    }
    desc = typings.describe(model)
    assert desc["kind"] == "layers" and desc["inputs"] == {"in": {"dtype": "float32", "shape": [None, 4]}}
    assert list(desc["outputs"]) == ["probs"]
    ts = typings.typescript(desc, "x")
    assert "export interface Model extends tf.LayersModel {" in ts
    assert "predict(x: tf.Tensor2D | [tf.Tensor2D], args?: tf.ModelPredictArgs)" in ts
