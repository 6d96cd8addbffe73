"""Recognize the PReLU subgraph and replace it with tfjs's ``Prelu(x, alpha)`` op.

Keras builds PReLU as ``relu(x) + (-alpha) * relu(-x)``, which after freezing and
constant folding is ``Add/AddV2(Relu(x), Mul(Const(-alpha), Relu(Neg(x))))``; the Add
and Mul operands may come in either order. tfjs has a single ``Prelu`` kernel for it.

The ``Prelu`` node (no ``T`` attr: tfjs's op has none) is emitted at the Add's
position and **takes the Add's name** — the reference renames the first Relu
instead, which leaves the Add's consumers (and a fetch on it) dangling, and changes
any other consumer of that Relu. alpha is the negated Const: negated in place,
keeping the Const's name, when nothing else reads that Const; otherwise a new Const
``<const>_alpha`` is added right after it. The Relus, Neg, and Mul are deleted only
when nothing else reads them.

``Prelu`` is not a TensorFlow op, so the result can be run by tfjs but not by TF.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    Plan,
    apply_plan,
    const_array,
    const_node,
    control_inputs,
    data_inputs,
    keep_set,
    new_node,
    node_name,
    unique_name,
)


@dataclass(frozen=True)
class _Match:
    add: node_def_pb2.NodeDef
    x: str  # tensor reference of the PReLU input
    pos_relu: node_def_pb2.NodeDef
    mul: node_def_pb2.NodeDef
    neg_relu: node_def_pb2.NodeDef
    neg: node_def_pb2.NodeDef
    alpha: node_def_pb2.NodeDef  # the Const holding -alpha


def _one_input(node: node_def_pb2.NodeDef | None, op: str) -> str | None:
    if node is None or node.op != op:
        return None
    inputs = data_inputs(node)
    return inputs[0] if len(inputs) == 1 else None


def _match_mul(mul: node_def_pb2.NodeDef | None, index: GraphIndex):
    """(alpha Const, Relu, Neg, x) when ``mul`` is ``Const * Relu(Neg(x))``."""
    if mul is None or mul.op != "Mul" or len(data_inputs(mul)) != 2:
        return None
    a, b = (index.get(ref) for ref in data_inputs(mul))
    for alpha, relu in ((a, b), (b, a)):
        if alpha is None or alpha.op != "Const":
            continue
        neg_ref = _one_input(relu, "Relu")
        neg = index.get(neg_ref) if neg_ref is not None else None
        x = _one_input(neg, "Neg")
        if x is not None:
            return alpha, relu, neg, x
    return None


def _find(add: node_def_pb2.NodeDef, index: GraphIndex) -> _Match | None:
    inputs = data_inputs(add)
    if add.op not in ("Add", "AddV2") or len(inputs) != 2:
        return None
    for relu_ref, mul_ref in ((inputs[0], inputs[1]), (inputs[1], inputs[0])):
        pos_relu = index.get(relu_ref)
        x = _one_input(pos_relu, "Relu")
        if x is None:
            continue
        found = _match_mul(index.get(mul_ref), index)
        if found is None:
            continue
        alpha, neg_relu, neg, neg_x = found
        if neg_x is not None and _canonical(neg_x) == _canonical(x) and const_array(alpha) is not None:
            return _Match(add, x, pos_relu, index.get(mul_ref), neg_relu, neg, alpha)
    return None


def _canonical(ref: str) -> str:
    return ref[:-2] if ref.endswith(":0") else ref


def fuse_prelu(graph_def: graph_pb2.GraphDef, keep: Iterable[str] = ()) -> graph_pb2.GraphDef:
    """Return a copy of ``graph_def`` with each PReLU subgraph collapsed into ``Prelu``."""
    keep_names = keep_set(keep)
    index = GraphIndex(graph_def.node)
    matches = [m for m in (_find(n, index) for n in index.nodes) if m is not None]
    if not matches:
        return apply_plan(graph_def, Plan.empty(), keep_names)
    fused_adds = {m.add.name for m in matches}
    # A Mul whose every reader is a fused Add dies, and so may its alpha Const.
    readers: dict[str, list[str]] = {}
    for node in index.nodes:
        for ref in node.input:
            readers.setdefault(node_name(ref), []).append(node.name)
    taken = set(index.by_name)
    plan = Plan.empty()
    alpha_name: dict[str, str] = {}
    for m in matches:
        if m.alpha.name not in alpha_name:
            alpha_value = const_array(m.alpha)
            assert alpha_value is not None  # _find checked it
            negated = -alpha_value
            exclusive = (
                readers.get(m.alpha.name, []) == [m.mul.name]
                and all(r in fused_adds for r in readers.get(m.mul.name, []))
                and m.alpha.name not in keep_names
            )
            name = m.alpha.name if exclusive else unique_name(m.alpha.name + "_alpha", taken)
            new_alpha = const_node(name, negated, m.alpha.attr["dtype"].type)
            new_alpha.device = m.alpha.device
            plan.put(m.alpha.name, [new_alpha] if exclusive else [m.alpha, new_alpha])
            alpha_name[m.alpha.name] = name
        prelu = new_node(m.add.name, "Prelu", m.add.device)
        prelu.input.extend([m.x, alpha_name[m.alpha.name], *control_inputs(m.add)])
        plan.put(m.add.name, [prelu])
        plan.drop_if_unused(m.mul.name, m.neg_relu.name, m.neg.name, m.pos_relu.name)
    return apply_plan(graph_def, plan, keep_names)
