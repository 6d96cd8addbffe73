"""Small GraphDef utilities shared by the graph modules (rewrites, freeze, weight_stash).

Every rewrite follows the same shape so it stays pure and deterministic:

1. index the input graph (``GraphIndex``) without touching it;
2. build the result as a *list* of NodeDefs in graph order, where unchanged nodes are
   the input's own messages (never mutated) and changed nodes are fresh copies;
3. ``finish`` drops the nodes the rewrite made dead (only among the candidates it
   names, so unrelated unused nodes such as spare placeholders survive) and copies
   the list into a new GraphDef with the input's ``versions`` and ``library`` (a
   rewrite that finds nothing to do returns its input: copying it would cost a full
   copy of the weights).

Orders only ever come from the input's node order, never from dict or set iteration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TensorFlow is imported lazily: importing it takes seconds.
    from tensorflow.core.framework import graph_pb2, node_def_pb2


def node_name(ref: str) -> str:
    """Node name of an input reference: ``^a`` -> ``a``, ``a:1`` -> ``a``."""
    name = ref[1:] if ref.startswith("^") else ref
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def output_index(ref: str) -> int:
    """Output port of a data input reference (``a`` -> 0, ``a:2`` -> 2)."""
    head, sep, tail = ref.rpartition(":")
    return int(tail) if sep and tail.isdigit() else 0


def is_control(ref: str) -> bool:
    return ref.startswith("^")


def data_inputs(node: node_def_pb2.NodeDef) -> list[str]:
    return [ref for ref in node.input if not is_control(ref)]


def control_inputs(node: node_def_pb2.NodeDef) -> list[str]:
    return [ref for ref in node.input if is_control(ref)]


def merged_control_inputs(nodes: Sequence[node_def_pb2.NodeDef], exclude: Iterable[str] = ()) -> list[str]:
    """Control inputs of all ``nodes``, first occurrence first, minus refs to ``exclude``."""
    skip = set(exclude)
    seen: set[str] = set()
    out: list[str] = []
    for node in nodes:
        for ref in control_inputs(node):
            if ref not in seen and node_name(ref) not in skip:
                seen.add(ref)
                out.append(ref)
    return out


def data_format(node: node_def_pb2.NodeDef) -> bytes:
    """The node's ``data_format`` attr; TF's default (absent) is NHWC."""
    return node.attr["data_format"].s if "data_format" in node.attr else b"NHWC"


def new_node(name: str, op: str, device: str = "") -> node_def_pb2.NodeDef:
    from tensorflow.core.framework import node_def_pb2

    return node_def_pb2.NodeDef(name=name, op=op, device=device)


def copy_node(node: node_def_pb2.NodeDef) -> node_def_pb2.NodeDef:
    out = new_node("", "")
    out.CopyFrom(node)
    return out


class GraphIndex:
    """Read-only lookups over a node list: by name, and who consumes what."""

    def __init__(self, nodes: Iterable[node_def_pb2.NodeDef]):
        self.nodes = list(nodes)
        self.by_name: dict[str, node_def_pb2.NodeDef] = {n.name: n for n in self.nodes}
        # Every reference (data or control) counts: a node read by a control edge
        # cannot be fused away either.
        self.refs: dict[str, int] = {}
        # Output ports of a node that anything reads (``bn:1`` blocks folding a BN).
        self.ports: dict[str, set[int]] = {}
        for node in self.nodes:
            for ref in node.input:
                src = node_name(ref)
                self.refs[src] = self.refs.get(src, 0) + 1
                if not is_control(ref):
                    self.ports.setdefault(src, set()).add(output_index(ref))

    def get(self, ref: str) -> node_def_pb2.NodeDef | None:
        return self.by_name.get(node_name(ref))

    def consumers(self, name: str) -> int:
        return self.refs.get(name, 0)

    def only_output0_read(self, name: str) -> bool:
        return self.ports.get(name, set()) <= {0}

    def single_consumer(self, name: str, keep: set[str]) -> bool:
        """Exactly one reference to ``name`` (port 0) and not a protected fetch node."""
        return self.consumers(name) == 1 and self.only_output0_read(name) and name not in keep


def const_array(node: node_def_pb2.NodeDef | None) -> np.ndarray | None:
    """Value of a ``Const`` node as numpy, else None."""
    if node is None or node.op != "Const" or "value" not in node.attr:
        return None
    from tensorflow.python.framework import tensor_util

    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def const_node(name: str, array: np.ndarray, dtype_enum: int) -> node_def_pb2.NodeDef:
    """A ``Const`` NodeDef holding ``array`` (already in the right numpy dtype)."""
    from tensorflow.python.framework import tensor_util

    node = new_node(name, "Const")
    node.attr["dtype"].type = dtype_enum
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.ascontiguousarray(array)))
    return node


def numpy_dtype(dtype_enum: int) -> np.dtype:
    from tensorflow.python.framework import dtypes

    return np.dtype(dtypes.as_dtype(dtype_enum).as_numpy_dtype)


def set_fused_ops(node: node_def_pb2.NodeDef, ops: Sequence[bytes]) -> None:
    from tensorflow.core.framework import attr_value_pb2

    node.attr["fused_ops"].CopyFrom(
        attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(s=list(ops)))
    )


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``… if taken; records the result in ``taken``."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


@dataclass
class Plan:
    """Edits to a graph, applied in one ordered pass by ``apply_plan``.

    ``replace[name]`` is the list of nodes emitted at the position of input node
    ``name`` (empty list = delete it); ``dead`` are nodes to delete if, after the
    edits, nothing references them any more.
    """

    replace: dict[str, list[node_def_pb2.NodeDef]]
    dead: list[str]

    @classmethod
    def empty(cls) -> Plan:
        return cls(replace={}, dead=[])

    def put(self, name: str, nodes: list[node_def_pb2.NodeDef]) -> None:
        self.replace[name] = nodes

    def drop_if_unused(self, *names: str) -> None:
        self.dead.extend(names)


def apply_plan(graph_def: graph_pb2.GraphDef, plan: Plan, keep: set[str]) -> graph_pb2.GraphDef:
    if not plan.replace and not plan.dead:
        return graph_def  # nothing to change: no copy of the weights either
    nodes: list[node_def_pb2.NodeDef] = []
    for node in graph_def.node:
        nodes.extend(plan.replace.get(node.name, [node]))
    nodes = _drop_dead(nodes, plan.dead, keep)
    from tensorflow.core.framework import graph_pb2

    out = graph_pb2.GraphDef()
    out.node.extend(nodes)
    if graph_def.HasField("versions"):
        out.versions.CopyFrom(graph_def.versions)
    if graph_def.HasField("library"):
        out.library.CopyFrom(graph_def.library)
    return out


def _drop_dead(
    nodes: list[node_def_pb2.NodeDef], candidates: Sequence[str], keep: set[str]
) -> list[node_def_pb2.NodeDef]:
    """Remove candidates nobody references, repeating while removals free more of them."""
    pending = {name for name in candidates if name not in keep}
    if not pending:
        return nodes
    removed: set[str] = set()
    while True:
        index = GraphIndex(n for n in nodes if n.name not in removed)
        newly = {
            n.name
            for n in nodes
            if n.name in pending and n.name not in removed and index.consumers(n.name) == 0
        }
        if not newly:
            break
        removed |= newly
    return [n for n in nodes if n.name not in removed]


def keep_set(keep: Iterable[str] | None) -> set[str]:
    """Normalize fetch names (``out:0`` -> ``out``) that rewrites must never remove."""
    return {node_name(k) for k in (keep or ())}
