"""Graph helpers of the scan (``graph.scan``): nodes by name, the function call graph
and its bounds, the saver's save path; limits shared by the scan's checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tfjsconv.errors import ConversionError


class UnsafeModelError(ConversionError):
    """The model holds something that would run or read outside the model if loaded."""


# Deepest chain of function calls accepted (TF-generated models stay far below: a
# Keras model nests call -> layer -> while body, about 5 levels).
MAX_CALL_DEPTH = 64
# Largest tensor a constant may expand to beyond the values it stores, and largest
# allocation a shape-driven op may request from constant shapes (bytes).
MAX_EXPANDED_BYTES = 1 << 30
# How far a path input is followed back (Identity chains, call arguments).
_MAX_TRACE = 256

_IDENTITY_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "PlaceholderWithDefault"})
_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_IF_OPS = frozenset({"If", "StatelessIf"})
_WHILE_OPS = frozenset({"While", "StatelessWhile"})
# Ops that read a file named by one of their inputs (input index of the path).
_PATH_INPUTS: Mapping[str, int] = {
    "RestoreV2": 0,
    "InitializeTableFromTextFile": 1,
    "InitializeTableFromTextFileV2": 1,
}
# Ops whose output size is given by a constant input: (input index, what it means).
# "shape": the input is the output shape; "count": the input is an element count.
_SHAPE_INPUTS: Mapping[str, tuple[int, str]] = {
    "Fill": (0, "shape"),
    "Empty": (0, "shape"),
    "BroadcastTo": (1, "shape"),
    "RandomUniform": (0, "shape"),
    "RandomUniformInt": (0, "shape"),
    "RandomStandardNormal": (0, "shape"),
    "TruncatedNormal": (0, "shape"),
    "ScatterNd": (2, "shape"),
    "SparseToDense": (1, "shape"),
    "TensorListReserve": (1, "count"),
    "TensorArrayV3": (0, "count"),
    "ParallelConcat": (-1, "attr"),
    **{
        op: (0, "shape")
        for op in (
            "StatelessRandomNormal",
            "StatelessRandomUniform",
            "StatelessRandomUniformInt",
            "StatelessRandomUniformFullInt",
            "StatelessTruncatedNormal",
            "StatelessRandomNormalV2",
            "StatelessRandomUniformV2",
            "StatelessRandomUniformIntV2",
            "StatelessRandomUniformFullIntV2",
            "StatelessTruncatedNormalV2",
            "StatelessRandomBinomial",
            "StatelessRandomPoisson",
            "StatelessRandomGammaV2",
        )
    },
}
# Bytes per element by DataType enum; unknown types count 8 (the widest scalar).
_DTYPE_BYTES: Mapping[int, int] = {
    1: 4,
    2: 8,
    3: 4,
    4: 1,
    5: 2,
    6: 1,
    7: 8,
    8: 8,
    9: 8,
    10: 1,
    14: 2,
    17: 2,
    18: 16,
    19: 2,
    22: 4,
    23: 8,
}


def _node_of(ref: str) -> str:
    """``^a``, ``a``, ``a:1`` -> ``a`` (GraphDef references)."""
    return ref.lstrip("^").split(":")[0]


def _called(node: Any, library: Mapping[str, Any]) -> list[str]:
    """Library functions a node calls: by op name or through function attributes."""
    out = [node.op] if node.op in library else []
    for value in node.attr.values():
        if value.HasField("func"):
            out.append(value.func.name)
        elif value.HasField("list"):
            out.extend(f.name for f in value.list.func)
    return out


@dataclasses.dataclass
class _Graph:
    """Where an op lives: the top-level graph (``None``) or a library function."""

    name: str | None
    nodes: dict[str, Any]
    args: list[str]  # input arg names (functions only)

    @property
    def label(self) -> str:
        return self.name if self.name is not None else "the graph"


def _by_name(nodes: Any, where: str) -> dict[str, Any]:
    """Nodes by name; a repeated name is refused (a dict would hide all but the last)."""
    out = {n.name: n for n in nodes}
    if len(out) != len(nodes):
        raise UnsafeModelError(f"{where} has two nodes with the same name")
    return out


def _graphs(graph_def: Any) -> tuple[_Graph, dict[str, _Graph]]:
    top = _Graph(None, _by_name(graph_def.node, "the graph"), [])
    funcs: dict[str, _Graph] = {}
    for fdef in graph_def.library.function:
        name = fdef.signature.name
        if name in funcs:
            raise UnsafeModelError(f"function {name} is defined twice in the function library")
        funcs[name] = _Graph(
            name, _by_name(fdef.node_def, f"function {name}"), [a.name for a in fdef.signature.input_arg]
        )
    return top, funcs


def _check_call_graph(top: _Graph, funcs: Mapping[str, _Graph], where: str) -> None:
    """Refuse cycles and call chains deeper than ``MAX_CALL_DEPTH`` (iteratively)."""
    callees = {
        name: sorted({c for n in g.nodes.values() for c in _called(n, funcs)}) for name, g in funcs.items()
    }
    missing = sorted(
        {c for n in top.nodes.values() for c in _called(n, funcs) if c not in funcs}
        | {c for cs in callees.values() for c in cs if c not in funcs}
    )
    if missing:
        raise UnsafeModelError(f"{where}: calls functions missing from its library: {', '.join(missing[:5])}")
    depth: dict[str, int] = {}
    for root in sorted(funcs):
        if root in depth:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(callees[root]))]
        on_stack = {root}
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_stack.discard(name)
                depth[name] = 1 + max((depth[c] for c in callees[name]), default=0)
                if depth[name] > MAX_CALL_DEPTH:
                    raise UnsafeModelError(
                        f"{where}: function calls nest deeper than {MAX_CALL_DEPTH} levels (at {name})"
                    )
                continue
            if child in on_stack:
                raise UnsafeModelError(f"{where}: the function library is cyclic ({name} calls {child})")
            if child not in depth:
                if len(stack) > MAX_CALL_DEPTH:
                    raise UnsafeModelError(
                        f"{where}: function calls nest deeper than {MAX_CALL_DEPTH} levels (at {child})"
                    )
                stack.append((child, iter(callees[child])))
                on_stack.add(child)


def _save_path(top: _Graph, funcs: Mapping[str, _Graph], save_tensor: str) -> tuple[set[str], set[str]]:
    """Graph nodes feeding the saver's save tensor, and functions only they call.

    TensorFlow runs the save path only when *saving*; loading never does, so the
    save-only ops (``SaveV2``, ``MergeV2Checkpoints``) are accepted there and nowhere else.
    """
    if not save_tensor or _node_of(save_tensor) not in top.nodes:
        return set(), set()
    nodes: set[str] = set()
    pending = [_node_of(save_tensor)]
    while pending:
        name = pending.pop()
        if name in nodes or name not in top.nodes:
            continue
        nodes.add(name)
        pending.extend(_node_of(i) for i in top.nodes[name].input)

    def reach(roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            f = todo.pop()
            if f in seen or f not in funcs:
                continue
            seen.add(f)
            todo.extend(c for n in funcs[f].nodes.values() for c in _called(n, funcs))
        return seen

    from_save = reach(c for n in nodes for c in _called(top.nodes[n], funcs))
    from_rest = reach(c for name, n in top.nodes.items() if name not in nodes for c in _called(n, funcs))
    return nodes, from_save - from_rest
