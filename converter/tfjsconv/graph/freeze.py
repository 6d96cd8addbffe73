"""Concrete functions -> frozen GraphDefs plus the tfjs ``signature`` description.

Signature outputs keep the user's structured output keys: each key is paired with its
tensor by position in the function's flat outputs (the reference matched by dtype and
shape and lost the names when two outputs looked alike).  Hash-table resources get a
``resourceId`` that is their index in the model's deterministic object-graph order,
so the same model always produces the same ids.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from tfjsconv.errors import ConversionError
from tfjsconv.graph import checkpoint_source, lazy_weights, streaming
from tfjsconv.graph.graph_utils import node_name
from tfjsconv.graph.topology import message_to_dict


@dataclasses.dataclass
class FrozenModel:
    """Everything the writer needs; GraphDefs still hold their Const values."""

    graph_def: Any
    signature: dict[str, Any]
    output_nodes: list[str]
    generated_by: str
    structured_output_keys: list[str] | None = None
    initializer_graph_def: Any = None
    initializer_signature: dict[str, Any] | None = None


def _tensor_info(name: str, dtype, shape) -> dict[str, Any]:
    from tensorflow.core.framework import tensor_shape_pb2

    shape_proto = (
        shape.as_proto() if shape is not None else tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    )
    return {
        "name": name,
        "dtype": _dtype_name(dtype),
        "tensorShape": message_to_dict(shape_proto),
    }


def _dtype_name(dtype) -> str:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype.as_datatype_enum)


@dataclasses.dataclass
class FrozenFunction:
    """A frozen function as a GraphDef plus the tensors that name its inputs/outputs.

    ``inputs`` are the original function's inputs that stayed placeholders (the user's
    inputs and resource handles); ``outputs`` its outputs.  The frozen GraphDef keeps
    both names.
    """

    graph_def: Any
    inputs: list[Any]
    outputs: list[Any]


def _lean_freeze_helpers(c2c):
    """The TensorFlow-private halves of ``convert_variables_to_constants_v2``, or None."""
    converter_data = getattr(c2c, "_FunctionConverterDataInEager", None)
    replace_variables = getattr(c2c, "_replace_variables_by_constants", None)
    return (converter_data, replace_variables) if converter_data and replace_variables else None


def freeze_function(
    func, control_flow_v2: bool, stand_ins: tuple[dict[int, str], lazy_weights.LazyWeights] | None = None
) -> FrozenFunction:
    """Variables -> Consts, functions inlined (control flow lowered unless v2).

    This is ``convert_variables_to_constants_v2`` without its last step, which imports
    the frozen GraphDef back into a new ConcreteFunction only for us to serialize it
    again: that round trip cost ~170 MB of peak RSS on MobileNetV2, and the trace-only
    attributes it dropped are dropped here too.  The helpers are private to TensorFlow,
    so if a TensorFlow version lacks them the public function is used.

    ``stand_ins`` = (variable id -> checkpoint key, registry): variables are read from
    the checkpoint instead (the model was loaded without it), large ones frozen as
    value-less stand-ins (``graph.streaming``).
    """
    from tensorflow.python.framework import convert_to_constants as c2c

    helpers = _lean_freeze_helpers(c2c)
    try:
        if helpers is not None:
            converter_data, replace_variables = helpers
            if stand_ins is not None:
                converter_data = streaming.stand_in_converter_data(converter_data, *stand_ins)
            data = converter_data(func=func, lower_control_flow=not control_flow_v2, aggressive_inlining=True)
            graph_def, converted = replace_variables(converter_data=data)
            if stand_ins is not None:
                streaming.finish_freeze(graph_def, data, stand_ins[1])
            del data
            captures = func.graph.internal_captures
            converted_ids = {id(captures[i]) for i in converted}
            inputs = [t for t in func.inputs if id(t) not in converted_ids]
        elif stand_ins is not None:
            raise checkpoint_source.StreamingUnsupported("this TensorFlow lacks the freezing helpers")
        else:  # a TensorFlow without them (tested)
            frozen = c2c.convert_variables_to_constants_v2(
                func, lower_control_flow=not control_flow_v2, aggressive_inlining=True
            )
            graph_def, inputs = frozen.graph.as_graph_def(), list(frozen.inputs)
    except (ConversionError, checkpoint_source.StreamingUnsupported):
        raise
    except Exception as e:  # TF raises many types here; the user gets one line.
        raise ConversionError(
            f"cannot freeze the model's function: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    outputs = list(func.outputs)
    prune_unreachable(graph_def, [t.name for t in outputs + inputs])
    for node in graph_def.node:
        _strip_trace_attrs(node)
    for function in graph_def.library.function:
        for node in function.node_def:
            _strip_trace_attrs(node)
    return FrozenFunction(graph_def=graph_def, inputs=inputs, outputs=outputs)


def _strip_trace_attrs(node) -> None:
    """Drop what tracing recorded about the Python side: debug info,
    ``_user_specified_name`` and ``_class`` (colocation), whose values can name
    per-process ids (a captured resource's uid).  tfjs reads none of them."""
    node.ClearField("experimental_debug_info")
    for attr in ("_user_specified_name", "_class"):
        if attr in node.attr:
            del node.attr[attr]


def prune_unreachable(graph_def, keep: Sequence[str]) -> None:
    """Delete (in place: no copy of the weights) nodes that ``keep`` does not depend on.

    ``keep`` are tensor or node names; data and control inputs both count.
    """
    by_name = {node.name: node for node in graph_def.node}
    reached = set()
    pending = [node_name(ref) for ref in keep]
    while pending:
        name = pending.pop()
        if name in reached or name not in by_name:
            continue
        reached.add(name)
        pending.extend(node_name(ref) for ref in by_name[name].input)
    for index in reversed(range(len(graph_def.node))):
        if graph_def.node[index].name not in reached:
            del graph_def.node[index]


def _flat_input_keys(func) -> list[str]:
    """Names of the user inputs, in the function's flat input order."""
    import tensorflow as tf

    specs = tf.nest.flatten(func.structured_input_signature, expand_composites=True)
    keys = []
    for i, spec in enumerate(specs):
        name = getattr(spec, "name", None)
        keys.append(name or func.inputs[i].name.split(":")[0])
    return keys


def _output_keys(func) -> tuple[list[str | None], bool]:
    """Structured output key per flat output (None when outputs are not a flat dict)."""
    import tensorflow as tf

    structured = func.structured_outputs
    flat = func.outputs
    if isinstance(structured, dict) and all(
        not isinstance(v, (dict, list, tuple)) for v in structured.values()
    ):
        keys: list[str | None] = [None] * len(flat)
        by_name = {t.name: i for i, t in enumerate(flat)}
        for key in sorted(structured):
            value = structured[key]
            index = by_name.get(getattr(value, "name", None))
            if index is None:
                # Spec-only structured outputs: flat order is the sorted-key order.
                index = sorted(structured).index(key)
            keys[index] = str(key)
        return keys, True
    return [None] * len(tf.nest.flatten(structured)) if structured is not None else [None] * len(flat), False


def build_signature(
    func, frozen, resource_ids: dict[int, int]
) -> tuple[dict[str, Any], list[str | None], bool]:
    """The tfjs signature of ``func`` (original) as frozen into ``frozen``."""
    user_keys = _flat_input_keys(func)
    n_user = len(user_keys)
    original_inputs = {t.name: i for i, t in enumerate(func.inputs)}
    captured = list(func.captured_inputs)
    inputs: dict[str, Any] = {}
    for tensor in frozen.inputs:
        index = original_inputs.get(tensor.name)
        if index is not None and index < n_user:
            key = user_keys[index]
            source = func.inputs[index]
            inputs[key] = _tensor_info(tensor.name, source.dtype, source.shape)
            continue
        info = _tensor_info(tensor.name, tensor.dtype, tensor.shape)
        if index is not None and index - n_user < len(captured):
            handle = captured[index - n_user]
            handle_id = getattr(handle, "_id", None)
            rid = resource_ids.get(handle_id) if handle_id is not None else None
            if rid is not None:
                info["resourceId"] = rid
        inputs[tensor.name] = info
    keys, is_dict = _output_keys(func)
    outputs: dict[str, Any] = {}
    for i, tensor in enumerate(frozen.outputs):
        source = func.outputs[i] if i < len(func.outputs) else tensor
        user_key = keys[i] if i < len(keys) else None
        out_key = user_key if user_key is not None else tensor.name
        outputs[out_key] = _tensor_info(tensor.name, source.dtype, source.shape)
    signature: dict[str, Any] = {}
    if inputs:
        signature["inputs"] = {k: inputs[k] for k in sorted(inputs)}
    signature["outputs"] = {k: outputs[k] for k in sorted(outputs)}
    return signature, keys, is_dict


def rename_ref(ref: str, renames: dict[str, str]) -> str:
    """Rename the node part of a tensor/control reference (``^n``, ``n``, ``n:1``)."""
    control = ref.startswith("^")
    base = ref[1:] if control else ref
    head, sep, tail = base.partition(":")
    return ("^" if control else "") + renames.get(head, head) + sep + tail


def rename_numeric_nodes(graph_def, prefix: str) -> dict[str, str]:
    """Give all-digit node names (TF's process-global uids for captured tensors) stable
    names ``<prefix><k>`` in graph order, so outputs do not depend on process history."""
    renames: dict[str, str] = {}
    for node in graph_def.node:
        if node.name.isdigit():
            renames[node.name] = f"{prefix}{len(renames)}"
    if not renames:
        return renames
    for node in graph_def.node:
        if node.name in renames:
            node.name = renames[node.name]
        node.input[:] = [rename_ref(i, renames) for i in node.input]
    return renames


_LOADER_SHARED_NAME = re.compile(rb"^\d+_load_\d+_\d+$")


def stabilize_shared_names(graph_def) -> None:
    """Replace the SavedModel loader's per-process table names (``4_load_1_51``).

    Restoring a table in TF2 gives it ``shared_name = <node>_load_<counter>_<uid>``,
    which changes with every load in a process.  tfjs keys tables by node name and
    ignores ``shared_name``, so a stable value (the node's own name) changes nothing.
    """
    for node in graph_def.node:
        attr = node.attr.get("shared_name") if "shared_name" in node.attr else None
        if attr is not None and _LOADER_SHARED_NAME.match(attr.s):
            attr.s = node.name.encode("utf-8")


def _resources(root) -> list:
    from tensorflow.python.checkpoint.trackable_view import TrackableView
    from tensorflow.python.trackable.resource import TrackableResource

    return [obj for obj in TrackableView(root).descendants() if isinstance(obj, TrackableResource)]


def _initialize_into(resource, old_handle) -> None:
    """Run ``resource``'s initializer against its new handle (set by the caller).

    A SavedModel-restored initializer captured the *loaded* table handle; calling it
    as is would initialize that eager table and leave the graph's new table empty (and
    leave an unfed resource placeholder in the initializer graph).  Re-bind the capture.
    """
    fn = resource._initialize
    concretes = []
    if hasattr(fn, "_list_all_concrete_functions"):
        concretes = list(fn._list_all_concrete_functions())
    if len(concretes) == 1:
        concrete = concretes[0]
        captures = [
            resource._resource_handle if getattr(c, "_id", None) == old_handle._id else c
            for c in concrete.captured_inputs
        ]
        concrete._call_flat([], captures)
    else:
        fn()


def _initializer(root, control_flow_v2: bool, stand_ins=None):
    """Frozen graph that re-creates and initializes every resource of ``root``.

    Returns (graph_def, initializer_signature, {eager handle id: resourceId}) or Nones.
    """
    import tensorflow as tf

    resources = _resources(root)
    if not resources:
        return None, None, {}
    original = [r.resource_handle for r in resources]
    ids = {h._id: i + 1 for i, h in enumerate(original)}

    @tf.function(autograph=False)
    def resource_initializer():
        handles = []
        for resource in resources:
            resource._resource_handle = resource._create_resource()
            handles.append(resource._resource_handle)
        for resource, old in zip(resources, original, strict=False):
            _initialize_into(resource, old)
        return handles

    try:
        concrete = resource_initializer.get_concrete_function()
    finally:
        for resource, handle in zip(resources, original, strict=False):
            resource._resource_handle = handle
    frozen = freeze_function(concrete, control_flow_v2, stand_ins)
    graph_def = frozen.graph_def
    renames = rename_numeric_nodes(graph_def, "resource_initializer/capture_")
    if stand_ins is not None:
        stand_ins[1].renamed(graph_def, renames)
    stabilize_shared_names(graph_def)
    outputs = {}
    for i, tensor in enumerate(frozen.outputs):
        info = _tensor_info(rename_ref(tensor.name, renames), tensor.dtype, tensor.shape)
        info["resourceId"] = i + 1
        outputs[tensor.name] = info
    signature = {"outputs": {k: outputs[k] for k in sorted(outputs)}}
    return graph_def, signature, ids


def freeze_concrete_function(
    func,
    *,
    root=None,
    control_flow_v2: bool,
    generated_by: str,
    stand_ins: tuple[dict[int, str], lazy_weights.LazyWeights] | None = None,
) -> FrozenModel:
    """Freeze ``func`` (and the resource initializer of ``root``, if any); see
    ``freeze_function`` for ``stand_ins``."""
    init_graph, init_signature, resource_ids = (None, None, {})
    if root is not None:
        init_graph, init_signature, resource_ids = _initializer(root, control_flow_v2, stand_ins)
    frozen = freeze_function(func, control_flow_v2, stand_ins)
    signature, keys, is_dict = build_signature(func, frozen, resource_ids)
    graph_def = frozen.graph_def
    renames = rename_numeric_nodes(graph_def, "capture_")
    if stand_ins is not None:
        stand_ins[1].renamed(graph_def, renames)
    stabilize_shared_names(graph_def)
    for section in signature.values():
        for info in section.values():
            info["name"] = rename_ref(info["name"], renames)
    output_nodes = [rename_ref(t.name, renames).split(":")[0] for t in frozen.outputs]
    return FrozenModel(
        graph_def=graph_def,
        signature=signature,
        output_nodes=output_nodes,
        generated_by=generated_by,
        structured_output_keys=sorted(k for k in keys if k is not None) if is_dict else None,
        initializer_graph_def=init_graph if init_graph is not None and len(init_graph.node) else None,
        initializer_signature=init_signature if init_graph is not None and len(init_graph.node) else None,
    )
