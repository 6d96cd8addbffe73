"""Run a converted tfjs model in TensorFlow with chosen weight values.

The search measures errors on the model as it is *written* (after every graph
optimization and fusion), so these evaluators start from the staged ``model.json`` and
its float32 weights, not from the source model:

* graph models: ``modelTopology`` parsed back into a GraphDef; each float32 weight
  (a ``Const`` without a value in model.json) becomes a ``Placeholder`` fed on every run,
  other weights get their values back. The few ops only tfjs has are spelled with
  TensorFlow ops of the same meaning first (``FusedDepthwiseConv2dNative`` =
  DepthwiseConv2dNative [+ BiasAdd] [+ activation]; ``Prelu(x, a)`` = max(x, 0) +
  a * min(x, 0); ``_FusedConv2D``/``_FusedMatMul`` ending in Prelu = the op with BiasAdd
  only, then that Prelu). One session serves every run.
* layers models: the tf_keras model ``tfjsconv.layers`` builds from the topology; each
  weight's variable is assigned before a run.

``run(values)`` returns the outputs for the calibration inputs; ``values`` maps weight
names to arrays and defaults to the float32 weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfjsconv import tf_env
from tfjsconv.errors import ConversionError
from tfjsconv.quantize_search.calibration import InputSpec

_TF_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_BOOL": "bool",
    "DT_DOUBLE": "float64",
    "DT_UINT8": "uint8",
    "DT_INT8": "int8",
    "DT_INT16": "int16",
}


def _data_inputs(node: Any) -> list[str]:
    return [i for i in node.input if not i.startswith("^")]


def _control_inputs(node: Any) -> list[str]:
    return [i for i in node.input if i.startswith("^")]


_DT_FLOAT = 1  # types_pb2.DT_FLOAT


def _type(node: Any) -> int:
    """The node's ``T`` (tfjs writes ``Prelu`` without one: float32)."""
    return node.attr["T"].type if "T" in node.attr else _DT_FLOAT


class _Builder:
    """Appends TF nodes to ``graph`` (a GraphDef) for the tfjs-only ops."""

    def __init__(self, graph: Any):
        self.graph = graph

    def add(self, name: str, op: str, inputs: Sequence[str], dtype: int, controls: Sequence[str] = ()) -> str:
        node = self.graph.node.add(name=name, op=op)
        node.input.extend(list(inputs) + list(controls))
        node.attr["T"].type = dtype
        return name

    def prelu(self, name: str, x: str, alpha: str, dtype: int, controls: Sequence[str] = ()) -> str:
        zero = self.graph.node.add(name=name + "/qs_zero", op="Const")
        zero.attr["dtype"].type = dtype
        zero.attr["value"].tensor.dtype = dtype
        zero.attr["value"].tensor.float_val.append(0.0)
        pos = self.add(name + "/qs_pos", "Maximum", [x, zero.name], dtype)
        neg = self.add(name + "/qs_neg", "Minimum", [x, zero.name], dtype)
        scaled = self.add(name + "/qs_scaled", "Mul", [neg, alpha], dtype)
        return self.add(name, "AddV2", [pos, scaled], dtype, controls)

    def activation(
        self, name: str, op: str, x: str, extra: Sequence[str], dtype: int, controls: Sequence[str]
    ) -> str:
        if op == "Prelu":
            return self.prelu(name, x, extra[0], dtype, controls)
        node_name = self.add(name, op, [x], dtype, controls)
        return node_name


def _copy(builder: _Builder, node: Any, name: str, op: str, inputs: Sequence[str]) -> Any:
    copy = builder.graph.node.add()
    copy.CopyFrom(node)
    copy.name, copy.op = name, op
    del copy.input[:]
    copy.input.extend(inputs)
    return copy


def _expand_fused_depthwise(builder: _Builder, node: Any) -> None:
    ops = [s.decode() for s in node.attr["fused_ops"].list.s]
    inputs, controls = _data_inputs(node), _control_inputs(node)
    dtype = _type(node)
    last = len(ops) == 1 and ops[0] == "BiasAdd"
    core = _copy(builder, node, node.name + "/qs_dw", "DepthwiseConv2dNative", inputs[:2])
    for key in ("fused_ops", "num_args", "epsilon", "leakyrelu_alpha", "TArgs"):
        if key in core.attr:
            del core.attr[key]
    value = core.name
    extra = inputs[2:]
    if ops and ops[0] == "BiasAdd":
        value = builder.add(
            node.name if last else node.name + "/qs_bias",
            "BiasAdd",
            [value, extra[0]],
            dtype,
            controls if last else (),
        )
        extra = extra[1:]
    rest = ops[1:]
    if rest:
        builder.activation(node.name, rest[0], value, extra, dtype, controls)
    elif not last:
        builder.add(node.name, "Identity", [value], dtype, controls)


def _expand_fused_prelu(builder: _Builder, node: Any) -> None:
    inputs, controls = _data_inputs(node), _control_inputs(node)
    dtype = _type(node)
    core = _copy(builder, node, node.name + "/qs_core", node.op, inputs[:3])
    core.attr["fused_ops"].list.s[:] = [b"BiasAdd"]
    core.attr["num_args"].i = 1
    if "TArgs" in core.attr:
        core.attr["TArgs"].list.type[:] = [dtype]
    builder.prelu(node.name, core.name, inputs[3], dtype, controls)


def runnable_graph(graph_def: Any) -> Any:
    """A copy of ``graph_def`` with the tfjs-only ops spelled with TF ops (module doc)."""
    out = type(graph_def)()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    builder = _Builder(out)
    for node in graph_def.node:
        fused = [s.decode() for s in node.attr["fused_ops"].list.s] if "fused_ops" in node.attr else []
        if node.op == "Prelu":
            inputs = _data_inputs(node)
            builder.prelu(node.name, inputs[0], inputs[1], _type(node), _control_inputs(node))
        elif node.op == "FusedDepthwiseConv2dNative":
            _expand_fused_depthwise(builder, node)
        elif node.op in ("_FusedConv2D", "_FusedMatMul") and fused == ["BiasAdd", "Prelu"]:
            _expand_fused_prelu(builder, node)
        else:
            out.node.add().CopyFrom(node)
    return out


def _shape(tensor_shape: Mapping[str, Any]) -> tuple[int | None, ...]:
    dims = tensor_shape.get("dim", []) if isinstance(tensor_shape, Mapping) else []
    out: list[int | None] = []
    for dim in dims:
        size = int(dim.get("size", -1))
        out.append(None if size < 0 else size)
    return tuple(out)


class GraphEvaluator:
    """A tfjs graph model run in one TF session, its float32 weights fed per run."""

    def __init__(self, model: Mapping[str, Any], weights: Sequence[tuple[str, np.ndarray]]):
        tf = tf_env.import_tensorflow()
        from google.protobuf import json_format
        from tensorflow.core.framework import graph_pb2

        if model.get("modelInitializer"):
            raise ConversionError(
                "quantize_budget does not support graph models with an initializer graph (tables)"
            )
        signature = model.get("signature") or {}
        inputs = signature.get("inputs") or {}
        outputs = signature.get("outputs") or {}
        if not inputs or not outputs:
            raise ConversionError(
                "quantize_budget needs a graph model with a signature naming inputs and outputs"
            )
        graph_def = graph_pb2.GraphDef()
        try:
            json_format.ParseDict(model["modelTopology"], graph_def)
        except json_format.ParseError as exc:
            raise ConversionError(f"cannot read the graph model's topology back: {exc}") from None
        values = dict(weights)
        self.fed = sorted(name for name, array in weights if array.dtype == np.float32)
        fed = set(self.fed)
        for node in graph_def.node:
            if node.name in fed:
                dtype = node.attr["dtype"].type
                shape = node.attr["value"].tensor.tensor_shape
                node.op = "Placeholder"
                del node.attr["value"]
                node.attr["dtype"].type = dtype
                node.attr["shape"].shape.CopyFrom(shape)
            elif node.name in values and node.op == "Const":
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values[node.name]))
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.graph_util.import_graph_def(runnable_graph(graph_def), name="")
        self.specs = tuple(
            InputSpec(
                key,
                _shape(inputs[key].get("tensorShape", {})),
                _TF_DTYPES.get(inputs[key].get("dtype"), "float32"),
            )
            for key in sorted(inputs)
        )
        self._feeds = [inputs[key]["name"] for key in sorted(inputs)]
        self._fetches = [outputs[key]["name"] for key in sorted(outputs)]
        self.output_names = tuple(sorted(outputs))
        self._weights = {name: values[name] for name in self.fed}
        self._session = tf.compat.v1.Session(graph=self._graph)
        self._inputs: tuple[np.ndarray, ...] = ()

    def set_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        self._inputs = tuple(arrays)

    def run(self, values: Mapping[str, np.ndarray] | None = None) -> list[np.ndarray]:
        feed: dict[str, np.ndarray] = {name + ":0": array for name, array in self._weights.items()}
        for name, array in (values or {}).items():
            feed[name + ":0"] = array
        feed.update(zip(self._feeds, self._inputs, strict=False))
        try:
            outs = self._session.run(self._fetches, feed)
        except Exception as exc:  # noqa: BLE001 - TF raises many types for bad inputs
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConversionError(
                f"TensorFlow cannot run the model on the calibration inputs: {message}"
            ) from None
        return [np.asarray(o) for o in outs]

    def close(self) -> None:
        self._session.close()


class LayersEvaluator:
    """A tfjs layers model as a tf_keras model; weights assigned to its variables per run."""

    def __init__(
        self, model: Mapping[str, Any], weights: Sequence[tuple[str, np.ndarray]], allow_unsafe: bool
    ):
        from tfjsconv.layers import tf_keras_io

        topology = model.get("modelTopology")
        if not isinstance(topology, Mapping) or not isinstance(topology.get("model_config"), Mapping):
            raise ConversionError("quantize_budget needs a layers model with a topology")
        self._model = tf_keras_io.build_model(topology, weights, allow_unsafe)
        names = {name for name, _ in weights}
        self._variables: dict[str, Any] = {}
        for variable in self._model.weights:
            stripped = variable.name[:-2] if variable.name.endswith(":0") else variable.name
            parts = stripped.split("/")
            short = "/".join(parts[:-2] + parts[-1:]) if len(parts) >= 3 else stripped
            for candidate in (stripped, short):
                if candidate in names and candidate not in self._variables:
                    self._variables[candidate] = variable
                    break
        self._weights = {name: array for name, array in weights if name in self._variables}
        self.fed = sorted(self._weights)
        self.specs = tuple(
            InputSpec(
                self._model.input_names[i],  # the InputLayer names tfjs-layers feeds by
                tuple(None if d is None else int(d) for d in tensor.shape),
                tensor.dtype.name,
            )
            for i, tensor in enumerate(self._model.inputs)
        )
        self.output_names = tuple(self._model.output_names)
        # One traced graph for every run: the variables are read by reference, so an
        # assignment between runs is seen without retracing.
        keras_model = self._model
        self._call = tf_env.import_tensorflow().function(
            lambda *xs: keras_model(list(xs) if len(xs) > 1 else xs[0], training=False)
        )
        self._inputs: tuple[np.ndarray, ...] = ()
        self._current: dict[str, np.ndarray] = {}

    def set_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        self._inputs = tuple(arrays)

    def run(self, values: Mapping[str, np.ndarray] | None = None) -> list[np.ndarray]:
        wanted = dict(self._weights)
        wanted.update(values or {})
        for name, array in wanted.items():
            if self._current.get(name) is not array:  # kept alive here: identity is safe
                self._variables[name].assign(array)
                self._current[name] = array
        try:
            outs = self._call(*self._inputs)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad inputs
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConversionError(
                f"TensorFlow cannot run the model on the calibration inputs: {message}"
            ) from None
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        return [np.asarray(o) for o in outs]

    def close(self) -> None:
        pass
