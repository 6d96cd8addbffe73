"""Rewrite ops tfjs 4.22 lacks into ops it runs, where the identity is exact math.

Each entry of ``EXACT_REWRITES`` is one op, the formula, and what real models emit
it (the README's table is generated from it); each is tested in the real tfjs runtime
(``tests/python/test_exact_op_rewrites.py``).  The rewritten node keeps its name and
position, so consumers and fetches are untouched; the helper nodes are named after
it (``<name>/erf``...) and appended at the end of the graph.  Unlike the other
rewrites this one edits the GraphDef in place: it runs on the frozen graph, which
holds every weight, and a copy would double the conversion's peak memory.

Only the top-level graph is rewritten (not function bodies of functional control
flow): an op left there is still reported by the op check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Set

import numpy as np

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

from tfjsconv.graph.graph_utils import (
    const_node,
    control_inputs,
    data_inputs,
    new_node,
    node_name,
    numpy_dtype,
    unique_name,
)


class ExactRewrite(NamedTuple):
    op: str
    formula: str
    seen_in: str


EXACT_REWRITES = (
    ExactRewrite("Erfc", "Erfc(x) = 1 - Erf(x)", 'Keras 3 `activation="gelu"` (`keras.activations.gelu`)'),
    ExactRewrite("Softsign", "Softsign(x) = x / (1 + Abs(x))", '`activation="softsign"` (Keras 2 and 3)'),
)


def rewrite_table_markdown() -> str:
    """The README's table of rewrites (one home: ``EXACT_REWRITES``)."""
    rows = ["| op tfjs 4.22 lacks | rewritten as | seen in |", "|---|---|---|"]
    rows += [f"| `{r.op}` | `{r.formula}` | {r.seen_in} |" for r in EXACT_REWRITES]
    return "\n".join(rows)


def _helper(name: str, op: str, inputs: List[str], like: node_def_pb2.NodeDef) -> node_def_pb2.NodeDef:
    node = new_node(name, op, like.device)
    node.input.extend(inputs)
    node.attr["T"].CopyFrom(like.attr["T"])
    return node


def _one(name: str, like: node_def_pb2.NodeDef, x: str) -> node_def_pb2.NodeDef:
    """Scalar 1 of the node's dtype, in ``x``'s frame (a control input on x's node)."""
    dtype_enum = like.attr["T"].type
    one = const_node(name, np.array(1, dtype=numpy_dtype(dtype_enum)), dtype_enum)
    one.input.append("^" + node_name(x))
    return one


def _erfc(node: node_def_pb2.NodeDef, taken: Set[str]) -> List[node_def_pb2.NodeDef]:
    (x,) = data_inputs(node)
    one = _one(unique_name(f"{node.name}/one", taken), node, x)
    erf = _helper(unique_name(f"{node.name}/erf", taken), "Erf", [x, *control_inputs(node)], node)
    out = _helper(node.name, "Sub", [one.name, erf.name], node)
    return [one, erf, out]


def _softsign(node: node_def_pb2.NodeDef, taken: Set[str]) -> List[node_def_pb2.NodeDef]:
    (x,) = data_inputs(node)
    one = _one(unique_name(f"{node.name}/one", taken), node, x)
    abs_x = _helper(unique_name(f"{node.name}/abs", taken), "Abs", [x, *control_inputs(node)], node)
    denominator = _helper(unique_name(f"{node.name}/denominator", taken), "AddV2", [one.name, abs_x.name], node)
    out = _helper(node.name, "RealDiv", [x, denominator.name], node)
    return [one, abs_x, denominator, out]


_BUILDERS: Dict[str, Callable[[node_def_pb2.NodeDef, Set[str]], List[node_def_pb2.NodeDef]]] = {
    "Erfc": _erfc,
    "Softsign": _softsign,
}
assert set(_BUILDERS) == {r.op for r in EXACT_REWRITES}


def exact_op_rewrites(graph_def: graph_pb2.GraphDef) -> List[str]:
    """Replace, in place, every op of ``EXACT_REWRITES`` by its formula; returns the
    names of the rewritten nodes (in graph order)."""
    matches = [node for node in graph_def.node
               if node.op in _BUILDERS and len(data_inputs(node)) == 1 and "T" in node.attr]
    if not matches:
        return []
    taken: Set[str] = {node.name for node in graph_def.node}
    helpers: List[node_def_pb2.NodeDef] = []
    for node in matches:
        *extra, out = _BUILDERS[node.op](node, taken)
        node.CopyFrom(out)
        helpers.extend(extra)
    graph_def.node.extend(helpers)
    return [node.name for node in matches]
