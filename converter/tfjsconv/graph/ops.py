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


# What tfjs 4.22's executors accept in a fused kernel's ``fused_ops``: an optional bias
# (``BiasAdd``; ``NoOp`` for none), then at most one activation of tfjs-core's fused
# set. Grappler can fuse more (oneDNN's ``_FusedHardSwish``, ``BiasAdd, Add, Relu``...),
# which tfjs would load and then fail on ("Activation ... has not been implemented").
FUSED_KERNELS = frozenset({"_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative"})
FUSED_FIRST = frozenset({"BiasAdd", "NoOp"})
FUSED_ACTIVATIONS = frozenset({"Relu", "Relu6", "Elu", "LeakyRelu", "Prelu", "Sigmoid"})


def _unsupported_fusion(node) -> str | None:
    """``op[fused, ops]`` when ``node`` is a fused kernel tfjs cannot run, else None."""
    if node.op not in FUSED_KERNELS or "fused_ops" not in node.attr:
        return None
    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    ok = (len(fused) == 1 and fused[0] in FUSED_FIRST) or (
        len(fused) == 2 and fused[0] in FUSED_FIRST and fused[1] in FUSED_ACTIVATIONS
    )
    return None if ok else f"{node.op}[{', '.join(fused)}]"


def unsupported_ops(graph_defs: Iterable, strip_debug_ops: bool) -> list[str]:
    """Ops tfjs lacks, and fused kernels with a ``fused_ops`` list it cannot run."""
    supported = supported_ops(strip_debug_ops)
    used = set()
    fusions: set[str] = set()
    for graph_def in graph_defs:
        if graph_def is not None:
            used.update(graph_ops(graph_def))
            nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
            fusions.update(filter(None, map(_unsupported_fusion, nodes)))
    return sorted({op for op in used if op not in supported} | fusions)


def check_ops(graph_defs: Iterable, strip_debug_ops: bool, stage: str) -> None:
    """Raise ``UnsupportedOpsError`` listing every unsupported op, sorted."""
    graph_defs = list(graph_defs)
    bad = unsupported_ops(graph_defs, strip_debug_ops)
    if bad:
        raise UnsupportedOpsError(bad, stage=stage)
