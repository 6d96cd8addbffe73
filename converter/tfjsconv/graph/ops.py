"""Which TensorFlow ops the tfjs 4.22 runtime can execute (``data/tfjs_ops.json``)."""

from __future__ import annotations

from collections.abc import Iterable

from tfjsconv import datafiles
from tfjsconv.errors import UnsupportedOpsError
from tfjsconv.graph.lazy_weights import STAND_IN_CONTAINER, STAND_IN_OP

_OPS_FILE = datafiles.path("tfjs_ops.json")


def supported_ops(strip_debug_ops: bool) -> frozenset[str]:
    """Op names tfjs accepts; debug ops only when the converter strips them anyway."""
    data = datafiles.load_json("tfjs_ops.json")
    names = {op for ops in data["categories"].values() for op in ops}
    if strip_debug_ops:
        names.update(data["debug_ops"])
    return frozenset(names)


def _op(node) -> str:
    """The node's op; a streamed weight's stand-in is the Const it becomes."""
    if node.op == STAND_IN_OP and "container" in node.attr and node.attr["container"].s == STAND_IN_CONTAINER:
        return "Const"
    return node.op


def graph_ops(graph_def) -> list[str]:
    """Sorted op names used by the graph and by every function in its library."""
    names = {_op(node) for node in graph_def.node}
    for func in graph_def.library.function:
        names.update(node.op for node in func.node_def)
    return sorted(names)


def unsupported_ops(graph_defs: Iterable, strip_debug_ops: bool) -> list[str]:
    supported = supported_ops(strip_debug_ops)
    used = set()
    for graph_def in graph_defs:
        if graph_def is not None:
            used.update(graph_ops(graph_def))
    return sorted(op for op in used if op not in supported)


def check_ops(graph_defs: Iterable, strip_debug_ops: bool, stage: str) -> None:
    """Raise ``UnsupportedOpsError`` listing every unsupported op, sorted."""
    graph_defs = list(graph_defs)
    bad = unsupported_ops(graph_defs, strip_debug_ops)
    if bad:
        raise UnsupportedOpsError(bad, stage=stage)
