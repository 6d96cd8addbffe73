"""What a model takes and returns, read from its model.json, as data and as TypeScript.

Graph models: the signature's inputs and outputs (name -> dtype, shape), or the graph's
Placeholder nodes when there is no signature. Layers models: the input layers' names,
dtypes and batch shapes (outputs have no shape in the topology). The same description
goes into ``index.js`` (as data) and ``index.d.ts`` (as types), so the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# TensorFlow DataType enum names (graph model.json) -> tfjs dtype names.
_TF_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_HALF": "float32",
    "DT_DOUBLE": "float32",
    "DT_INT32": "int32",
    "DT_INT64": "int32",
    "DT_INT16": "int32",
    "DT_INT8": "int32",
    "DT_UINT8": "int32",
    "DT_BOOL": "bool",
    "DT_STRING": "string",
    "DT_COMPLEX64": "complex64",
}
# tfjs' ranked tensor types: rank -> type name (tfjs has none above rank 6).
_RANKED = {0: "tf.Scalar", 1: "tf.Tensor1D", 2: "tf.Tensor2D", 3: "tf.Tensor3D"}
_RANKED.update({4: "tf.Tensor4D", 5: "tf.Tensor5D", 6: "tf.Tensor6D"})

Spec = dict[str, Any]  # {"dtype": str, "shape": [int | None, ...] | None}


def _tf_shape(tensor_shape: Any) -> list[int | None] | None:
    """A TensorShapeProto as JSON -> list of sizes (None: unknown), or None: unknown rank."""
    if not isinstance(tensor_shape, dict) or tensor_shape.get("unknownRank"):
        return None
    dims = tensor_shape.get("dim") or []
    shape: list[int | None] = []
    for dim in dims:
        size = int(dim.get("size", -1)) if isinstance(dim, dict) else -1
        shape.append(size if size >= 0 else None)
    return shape


def _tensor_info(info: Any) -> Spec:
    info = info if isinstance(info, dict) else {}
    return {
        "dtype": _TF_DTYPES.get(str(info.get("dtype")), "float32"),
        "shape": _tf_shape(info.get("tensorShape")),
    }


def _graph_io(model: Mapping[str, Any]) -> tuple[dict[str, Spec], dict[str, Spec]]:
    signature = model.get("signature") or {}
    topology = model.get("modelTopology") or {}
    if isinstance(signature.get("inputs"), dict) and signature["inputs"]:
        inputs = {k: _tensor_info(v) for k, v in signature["inputs"].items() if "resourceId" not in v}
    else:
        inputs = {}
        for node in topology.get("node") or []:
            if isinstance(node, dict) and node.get("op") == "Placeholder":
                attr = node.get("attr") or {}
                dtype = _TF_DTYPES.get(str((attr.get("dtype") or {}).get("type")), "float32")
                shape = _tf_shape((attr.get("shape") or {}).get("shape"))
                inputs[str(node.get("name"))] = {"dtype": dtype, "shape": shape}
    outputs = {k: _tensor_info(v) for k, v in (signature.get("outputs") or {}).items()}
    return inputs, outputs


def _layers_io(model: Mapping[str, Any]) -> tuple[dict[str, Spec], dict[str, Spec]]:
    topology = model.get("modelTopology") or {}
    config = topology.get("model_config", topology)
    layers = (config.get("config") or {}).get("layers") or []
    inputs: dict[str, Spec] = {}
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("class_name") != "InputLayer":
            continue
        conf = layer.get("config") or {}
        shape = conf.get("batch_input_shape", conf.get("batch_shape"))
        dtype = conf.get("dtype")
        dtype = dtype if dtype in ("float32", "int32", "bool", "string") else "float32"
        name = str(conf.get("name", layer.get("name")))
        inputs[name] = {"dtype": dtype, "shape": list(shape) if isinstance(shape, list) else None}
    out_layers = (config.get("config") or {}).get("output_layers") or []
    names = [str(o[0]) for o in out_layers if isinstance(o, list) and o]
    if not names and layers and isinstance(layers[-1], dict):  # a Sequential: its last layer
        names = [str((layers[-1].get("config") or {}).get("name", layers[-1].get("name")))]
    outputs = {name: {"dtype": "float32", "shape": None} for name in names}
    return inputs, outputs


def model_kind(model: Mapping[str, Any]) -> str:
    """'graph' or 'layers', from model.json's ``format`` (or its topology when absent)."""
    fmt = model.get("format")
    if fmt == "graph-model":
        return "graph"
    if fmt == "layers-model":
        return "layers"
    topology = model.get("modelTopology")
    return "graph" if isinstance(topology, dict) and "node" in topology else "layers"


def describe(model: Mapping[str, Any]) -> dict[str, Any]:
    """``{"kind", "inputs", "outputs", "structuredOutputKeys"}`` of a model.json object."""
    kind = model_kind(model)
    inputs, outputs = _graph_io(model) if kind == "graph" else _layers_io(model)
    keys = (model.get("userDefinedMetadata") or {}).get("structuredOutputKeys")
    return {
        "kind": kind,
        "inputs": inputs,
        "outputs": outputs,
        "structuredOutputKeys": list(keys) if isinstance(keys, list) else None,
    }


def _tensor_type(spec: Spec) -> str:
    shape = spec.get("shape")
    return _RANKED.get(len(shape), "tf.Tensor") if isinstance(shape, list) else "tf.Tensor"


def _spec_type(spec: Spec) -> str:
    shape = spec.get("shape")
    dims = (
        "null"
        if shape is None
        else "readonly [" + ", ".join("null" if d is None else str(d) for d in shape) + "]"
    )
    return f"{{ readonly dtype: {json.dumps(spec['dtype'])}; readonly shape: {dims} }}"


def _doc(spec: Spec) -> str:
    shape = spec.get("shape")
    dims = (
        "unknown rank"
        if shape is None
        else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
    )
    return f"{spec['dtype']} {dims}"


def _output_type(desc: Mapping[str, Any]) -> str:
    """What predict() returns: tfjs gives a map for structured outputs, else one tensor
    for one output, else an array in output order."""
    outputs: dict[str, Spec] = desc["outputs"]
    keys = desc["structuredOutputKeys"]
    if keys:
        return "{ " + " ".join(f"{json.dumps(k)}: tf.Tensor;" for k in keys) + " }"
    if len(outputs) == 1:
        return _tensor_type(next(iter(outputs.values())))
    if outputs:
        return "[" + ", ".join(_tensor_type(s) for s in outputs.values()) + "]"
    return "tf.Tensor | tf.Tensor[]"


def typescript(desc: Mapping[str, Any], package_name: str) -> str:
    """``index.d.ts``: the loader's API with the model's inputs and outputs as types."""
    kind = desc["kind"]
    inputs: dict[str, Spec] = desc["inputs"]
    outputs: dict[str, Spec] = desc["outputs"]
    base = "tf.GraphModel" if kind == "graph" else "tf.LayersModel"
    out = [
        f"// Types of {package_name}: generated by tfjsconv from model.json; do not edit.",
        "import type * as tf from '@tensorflow/tfjs';",
        "",
        "/** Options of `load()`. */",
        "export interface LoadOptions {",
        "  /** Where this package's files are served (default: beside this module, `import.meta.url`). */",
        "  baseUrl?: string | URL;",
        "  /** The fetch to use (default: `globalThis.fetch`). */",
        "  fetch?: (url: string) => Promise<Response>;",
        "}",
        "",
        # Type aliases, not interfaces: an object type alias is assignable to tfjs'
        # NamedTensorMap (an index signature), so Model stays a tf.GraphModel.
        "/** The model's inputs: name -> tensor of the model's rank (dtype and shape in `inputs`). */",
        "export type Inputs = {",
    ]
    for name, spec in inputs.items():
        out.append(f"  /** {_doc(spec)} */")
        out.append(f"  {json.dumps(name)}: {_tensor_type(spec)};")
    out += [
        "};",
        "",
        "/** The model's outputs, by name (dtype and shape in `outputs`). */",
        "export type Outputs = {",
    ]
    for name, spec in outputs.items():
        out.append(f"  /** {_doc(spec)} */")
        out.append(f"  {json.dumps(name)}: {_tensor_type(spec)};")
    out += ["};", ""]
    result = _output_type(desc)
    if kind == "graph":
        out += [
            f"/** The loaded {base}, with `predict` and `executeAsync` typed by the model's signature. */",
            f"export interface Model extends {base} {{",
            f"  predict(inputs: Inputs, config?: tf.ModelPredictConfig): {result};",
            f"  predictAsync(inputs: Inputs, config?: tf.ModelPredictConfig): Promise<{result}>;",
            "}",
        ]
    else:
        ordered = ", ".join(_tensor_type(s) for s in inputs.values())
        arg = f"[{ordered}]" if len(inputs) != 1 else f"{ordered} | [{ordered}]"
        out += [
            f"/** The loaded {base}, with `predict` typed by the model's inputs (in order). */",
            f"export interface Model extends {base} {{",
            f"  predict(x: {arg}, args?: tf.ModelPredictArgs): tf.Tensor | tf.Tensor[];",
            "}",
        ]
    inputs_type = (
        "{ " + " ".join(f"readonly {json.dumps(k)}: {_spec_type(s)};" for k, s in inputs.items()) + " }"
    )
    outputs_type = (
        "{ " + " ".join(f"readonly {json.dumps(k)}: {_spec_type(s)};" for k, s in outputs.items()) + " }"
    )
    out += [
        "",
        f"export declare const kind: {json.dumps(kind)};",
        f"export declare const inputs: {inputs_type};",
        f"export declare const outputs: {outputs_type};",
        "/** Subresource-Integrity value (sha384) of each file `load()` fetches. */",
        "export declare const integrity: Readonly<Record<string, string>>;",
        "/** Thrown when a fetched file does not match its integrity value; `file` names it. */",
        "export declare class IntegrityError extends Error {",
        "  readonly file: string;",
        "}",
        "/** Fetches model.json and the weight shards, checks each against `integrity`, loads the model. */",
        "export declare function load(options?: LoadOptions): Promise<Model>;",
        "export default load;",
        "",
    ]
    return "\n".join(out)
