"""Path provenance for the scan (``graph.scan``): a file-reading op's path must come from
an asset or the saver, followed back through Identity chains and call arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from tfjsconv.graph.scan_graph import _CALL_OPS, _IDENTITY_OPS, _IF_OPS, _WHILE_OPS, _called, _Graph, _node_of


@dataclasses.dataclass(frozen=True)
class _Sources:
    """Tensors TensorFlow's loader binds to files of the model itself."""

    graph_tensors: frozenset[str]  # top-level node names (asset Consts, saver filename)
    bound_assets: Mapping[str, tuple[bool | None, ...]]  # function -> per-capture "is an asset"


def _producer(graph: _Graph, ref: str) -> tuple[str, Any | None]:
    """(name, node) producing ``ref``; node None means a function argument."""
    head = ref.lstrip("^").split(":")[0]
    if graph.name is not None and head in graph.args and head not in graph.nodes:
        return head, None
    return head, graph.nodes.get(head)


def _call_sites(funcs: Mapping[str, _Graph], top: _Graph, callee: str) -> Iterator[tuple[_Graph, Any]]:
    for graph in [top, *funcs.values()]:
        for node in graph.nodes.values():
            if callee in _called(node, funcs):
                yield graph, node


def _arg_input(node: Any, callee: str, funcs: Mapping[str, _Graph], index: int) -> str | None:
    """The caller-side input bound to argument ``index`` of ``callee`` (None: unknown)."""
    data = [i for i in node.input if not i.startswith("^")]
    if node.op == callee or node.op in _CALL_OPS or node.op in _WHILE_OPS:
        return data[index] if index < len(data) else None
    if node.op in _IF_OPS:
        return data[index + 1] if index + 1 < len(data) else None
    return None


def _path_ok(
    graph: _Graph, ref: str, top: _Graph, funcs: Mapping[str, _Graph], sources: _Sources, budget: list[int]
) -> tuple[bool, str]:
    """Does the path tensor ``ref`` come only from the model's own files?

    Follows Identity chains and function arguments back to their callers (or to the
    SavedModel object graph's bound inputs).  Returns (ok, what was found instead).
    """
    budget[0] -= 1
    if budget[0] < 0:
        return False, "a path computed too indirectly to check"
    name, node = _producer(graph, ref)
    if node is None and graph.name is not None:
        index = graph.args.index(name)
        bound = sources.bound_assets.get(graph.name)
        sites = list(_call_sites(funcs, top, graph.name))
        if bound is not None:
            # Called by the loader itself with the object graph's captured inputs.
            offset = len(graph.args) - len(bound)
            if index < offset or not bound[index - offset]:
                return False, "a function input that is not a SavedModel asset"
        elif not sites:
            return False, "an input of a function nothing in the model calls"
        for caller, site in sites:
            outer = _arg_input(site, graph.name, funcs, index)
            if outer is None:
                return False, f"an argument passed by {site.op}"
            ok, found = _path_ok(caller, outer, top, funcs, sources, budget)
            if not ok:
                return ok, found
        return True, ""
    if node is None:
        return False, f"the missing node {name}"
    if graph.name is None and name in sources.graph_tensors:
        return True, ""
    if node.op in _IDENTITY_OPS and node.input:
        return _path_ok(graph, node.input[0], top, funcs, sources, budget)
    if node.op == "ReadVariableOp" and graph.name is None and node.input:
        return _variable_ok(graph, _node_of(node.input[0]), top, funcs, sources, budget)
    if node.op == "Const":
        values = [v.decode("utf-8", "replace") for v in node.attr["value"].tensor.string_val]
        return False, f"the constant path {values[0]!r}" if values else "a constant"
    return False, f"the output of {node.op}"


def _variable_ok(
    graph: _Graph, var: str, top: _Graph, funcs: Mapping[str, _Graph], sources: _Sources, budget: list[int]
) -> tuple[bool, str]:
    """A top-level variable holds a model file's path if every assignment to it does
    (TF2 SavedModels keep asset paths in such a variable for TF1-style loaders)."""
    handle = graph.nodes.get(var)
    if handle is None or handle.op != "VarHandleOp":
        return False, "a variable that is not a plain variable"
    shared = handle.attr["shared_name"].s if "shared_name" in handle.attr else b""
    for func in funcs.values():
        for node in func.nodes.values():
            if (
                node.op == "VarHandleOp"
                and "shared_name" in node.attr
                and node.attr["shared_name"].s == shared
            ):
                return False, f"a variable {func.name} can also write"
    writers = [
        n
        for n in graph.nodes.values()
        if n.op != "ReadVariableOp" and n.input and _node_of(n.input[0]) == var and n is not handle
    ]
    if not writers:
        return False, "a variable nothing assigns"
    for writer in writers:
        if writer.op == "VarIsInitializedOp":
            continue
        if writer.op != "AssignVariableOp" or len(writer.input) < 2:
            return False, f"a variable written by {writer.op}"
        ok, found = _path_ok(graph, writer.input[1], top, funcs, sources, budget)
        if not ok:
            return ok, found
    return True, ""
