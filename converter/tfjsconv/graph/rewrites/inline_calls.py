"""Inline the function calls freezing left in the graph (tfjs has no call op).

TensorFlow's freezing inlines ordinary ``tf.function`` calls, but not those it must
not: a function marked ``_noinline`` or ``_XlaMustCompile`` (``jit_compile=True``)
stays a ``PartitionedCall`` / ``StatefulPartitionedCall``.  Keras 3 and tf_keras run
grouped convolutions through such a jit-compiled function, so ``ConvNeXt`` and
``RegNet`` graphs held calls tfjs cannot run.  Inference does not care how a function
was to be compiled: its body computes the same thing inlined.

This works on the protos only (no graph is built, no op runs: the model is untrusted
input): each call node's body is copied into the graph under ``<call>/``, its
argument references replaced by the call's inputs, and the call node becomes an
``IdentityN`` of the function's results (a ``NoOp`` if it has none), so every
consumer, fetch and control edge keeps reading the node it read.  Calls in an
inlined body are inlined in turn, to any depth (bounded, like the scan's call-chain
bound, so a cyclic library is an error, not a hang).  Functions no longer referenced
are dropped from the library.  Calls in the bodies of the control-flow functions
tfjs runs by name (``--control_flow_v2``) are inlined there the same way.  A call
whose function this cannot read (polymorphic attrs, list arguments, an op unknown to
TensorFlow) is left for the op check to report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfjsconv.errors import ConversionError
from tfjsconv.graph.graph_utils import is_control, new_node, node_name, unique_name

if TYPE_CHECKING:
    from tensorflow.core.framework import function_pb2, graph_pb2, node_def_pb2

CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
MAX_DEPTH = 64  # the scan's bound on call chains (docs/threat-model.md)


def _output_offsets(
    node: node_def_pb2.NodeDef, library: dict[str, function_pb2.FunctionDef]
) -> dict[str, int]:
    """Output arg name -> first flat output index of ``node``; KeyError if unknown."""
    if node.op in library:
        return {arg.name: i for i, arg in enumerate(library[node.op].signature.output_arg)}
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(node.op)
    if op_def is None:
        raise KeyError(node.op)
    offsets, position = {}, 0
    for arg in op_def.output_arg:
        offsets[arg.name] = position
        if arg.number_attr:
            position += node.attr[arg.number_attr].i
        elif arg.type_list_attr:
            position += len(node.attr[arg.type_list_attr].list.type)
        else:
            position += 1
    return offsets


def _simple_signature(function: function_pb2.FunctionDef) -> bool:
    args = [*function.signature.input_arg, *function.signature.output_arg]
    return not any(arg.number_attr or arg.type_list_attr for arg in args) and all(
        arg.type for arg in function.signature.output_arg
    )


def _has_placeholder(node: node_def_pb2.NodeDef) -> bool:
    return any(value.WhichOneof("value") == "placeholder" for value in node.attr.values())


def _function_name(node: node_def_pb2.NodeDef, library: dict[str, function_pb2.FunctionDef]) -> str | None:
    if node.op in CALL_OPS:
        name = node.attr["f"].func.name if "f" in node.attr else ""
        return name if name in library else None
    return node.op if node.op in library else None


def _inline_one(
    call: node_def_pb2.NodeDef,
    function: function_pb2.FunctionDef,
    library: dict[str, function_pb2.FunctionDef],
    taken: set[str],
    in_function: bool,
) -> tuple[node_def_pb2.NodeDef, list[node_def_pb2.NodeDef]] | None:
    """(the node replacing ``call``, the body's nodes), or None when it cannot be read.

    ``in_function``: ``call`` is in a function body, whose references name output
    args (``node:output:0``); the ``IdentityN`` replacing a ``PartitionedCall`` keeps
    that arg name, a call by function name would not, so it is left.
    """
    signature = function.signature
    args = [ref for ref in call.input if not is_control(ref)]
    if not _simple_signature(function) or len(args) != len(signature.input_arg):
        return None
    if in_function and call.op not in CALL_OPS:
        return None
    if any(_has_placeholder(node) for node in function.node_def):
        return None
    try:
        offsets = {node.name: _output_offsets(node, library) for node in function.node_def}
    except KeyError:
        return None
    renames = {node.name: unique_name(f"{call.name}/{node.name}", taken) for node in function.node_def}
    by_arg = dict(zip([arg.name for arg in signature.input_arg], args, strict=True))

    def translate(ref: str) -> str | None:
        if ref.startswith("^"):
            name = ref[1:]
            if name in renames:
                return "^" + renames[name]
            # An argument is ready when the call starts: only a graph node can be waited on.
            return None if in_function else "^" + node_name(by_arg[name])
        if ref in by_arg:
            return by_arg[ref]
        name, arg, index = ref.split(":")
        if in_function:
            return f"{renames[name]}:{arg}:{index}"
        flat = offsets[name][arg] + int(index)
        return renames[name] if flat == 0 else f"{renames[name]}:{flat}"

    caller_controls = [ref for ref in call.input if is_control(ref)]
    try:
        body = []
        for node in function.node_def:
            copy = new_node(renames[node.name], node.op, node.device)
            copy.attr.MergeFrom(node.attr)
            copy.input.extend(ref for ref in map(translate, node.input) if ref is not None)
            if not node.input:  # a source node runs after the call's control inputs
                copy.input.extend(caller_controls)
            body.append(copy)
        results = [str(translate(function.ret[arg.name])) for arg in signature.output_arg]
        controls = ["^" + renames[function.control_ret[key]] for key in sorted(function.control_ret)]
    except (KeyError, ValueError):
        return None
    replacement = new_node(call.name, "IdentityN" if results else "NoOp", call.device)
    replacement.input.extend([*results, *controls])
    if results:
        replacement.attr["T"].list.type.extend(arg.type for arg in signature.output_arg)
    if not body:
        replacement.input.extend(caller_controls)
    return replacement, body


def _referenced_functions(graph_def: graph_pb2.GraphDef) -> set[str]:
    """Library functions the graph reaches (by func attrs or by op name), transitively."""
    library = {f.signature.name: f for f in graph_def.library.function}
    reached: set[str] = set()
    pending = [list(graph_def.node)]
    while pending:
        for node in pending.pop():
            names = [node.op] if node.op in library else []
            for value in node.attr.values():
                kind = value.WhichOneof("value")
                if kind == "func":
                    names.append(value.func.name)
                elif kind == "list":
                    names.extend(f.name for f in value.list.func)
            for name in names:
                if name in library and name not in reached:
                    reached.add(name)
                    pending.append(list(library[name].node_def))
    return reached


def _inline_in(
    nodes,  # graph_def.node or a FunctionDef's node_def (a repeated field, edited in place)
    library: dict[str, function_pb2.FunctionDef],
    in_function: bool,
) -> list[str]:
    """Inline every call among ``nodes`` and the calls their bodies make."""
    taken = {node.name for node in nodes}
    depth: dict[str, int] = {}
    inlined: list[str] = []
    position = 0
    while position < len(nodes):
        node = nodes[position]
        position += 1
        name = _function_name(node, library)
        if name is None:
            continue
        level = depth.get(node.name, 1)
        if level > MAX_DEPTH:
            raise ConversionError(f"function calls nested deeper than {MAX_DEPTH} (at {node.name})")
        result = _inline_one(node, library[name], library, taken, in_function)
        if result is None:
            continue
        replacement, body = result
        for new in body:
            depth[new.name] = level + 1
        inlined.append(node.name)
        node.CopyFrom(replacement)
        nodes.extend(body)  # appended: visited later in this same loop
    return inlined


def inline_calls(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Inline, in place, every call of the top-level graph and of the library's
    remaining (control-flow) functions, and the calls their bodies make; returns the
    names of the inlined call nodes in the order inlined."""
    library = {f.signature.name: f for f in graph_def.library.function}
    if not library:
        return []
    inlined = _inline_in(graph_def.node, library, in_function=False)
    reached = _referenced_functions(graph_def)  # the control-flow bodies left
    for function in graph_def.library.function:
        if function.signature.name in reached:
            inlined.extend(_inline_in(function.node_def, library, in_function=True))
    if inlined:
        keep = _referenced_functions(graph_def)
        for index in reversed(range(len(graph_def.library.function))):
            if graph_def.library.function[index].signature.name not in keep:
                del graph_def.library.function[index]
        for index in reversed(range(len(graph_def.library.gradient))):
            if graph_def.library.gradient[index].function_name not in keep:
                del graph_def.library.gradient[index]
    return inlined
