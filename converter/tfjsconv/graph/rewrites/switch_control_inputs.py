"""Replace control inputs from ``Switch`` nodes by what TensorFlow means by them.

TensorFlow fires a control edge ``^s`` from a ``Switch`` whenever the Switch ran,
whichever branch its predicate chose.  tfjs 4.22's graph executor resolves ``^s`` to
output ``s:0`` (the *false* branch), which is undefined inside a loop body and in the
true branch of a cond, so every node waiting on it never runs: lowered
``tf.while_loop``s (function inlining adds a ``NoOp`` with control inputs from the
loop's Switches) fail in ``executeAsync`` with "Cannot compute the outputs".

A Switch runs exactly when its inputs are available, so ``^s`` is replaced by control
inputs on the Switch's own inputs (data, predicate, control), resolved recursively
when those are Switches too.  A data input ``t:1`` of a Switch ``t`` cannot be named
by a control input, so it is read through an ``Identity`` added next to ``t``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorflow.core.framework import graph_pb2, node_def_pb2

from tfjsconv.graph.graph_utils import (
    GraphIndex,
    Plan,
    apply_plan,
    copy_node,
    is_control,
    keep_set,
    new_node,
    node_name,
    output_index,
    unique_name,
)

SWITCH_OPS = ("Switch", "RefSwitch")


def _is_switch(node) -> bool:
    return node is not None and node.op in SWITCH_OPS


def switch_control_inputs(graph_def: graph_pb2.GraphDef, keep: Iterable[str] = ()) -> graph_pb2.GraphDef:
    """Return ``graph_def`` with no control input naming a Switch (see module doc)."""
    keep_names = keep_set(keep)
    index = GraphIndex(graph_def.node)
    users = [n for n in index.nodes if any(is_control(r) and _is_switch(index.get(r)) for r in n.input)]
    if not users:
        return graph_def
    taken: set[str] = set(index.by_name)
    readers: dict[str, node_def_pb2.NodeDef] = {}  # "switch:1" -> Identity reading it
    resolved: dict[str, list[str]] = {}

    def reader(ref: str) -> str:
        """Control ref satisfied when data ref ``ref`` (a Switch output) is defined."""
        if output_index(ref) == 0:
            return "^" + node_name(ref)
        if ref not in readers:
            source = index.get(ref)
            assert source is not None, ref  # a Switch output the graph defines
            node = new_node(
                unique_name(f"{source.name}/output_{output_index(ref)}_ready", taken),
                "Identity",
                source.device,
            )
            node.input.append(ref)
            if "T" in source.attr:
                node.attr["T"].CopyFrom(source.attr["T"])
            readers[ref] = node
        return "^" + readers[ref].name

    def expand(switch_name: str, trail: set[str]) -> list[str]:
        if switch_name in resolved:
            return resolved[switch_name]
        out: list[str] = []
        for ref in index.by_name[switch_name].input:
            source = index.get(ref)
            if source is None or node_name(ref) in trail:
                continue
            if is_control(ref):
                refs = expand(source.name, trail | {switch_name}) if _is_switch(source) else [ref]
            elif _is_switch(source):
                refs = [reader(ref)]
            else:
                refs = ["^" + source.name]
            out.extend(r for r in refs if r not in out)
        resolved[switch_name] = out
        return out

    plan = Plan.empty()
    placed: dict[str, list[node_def_pb2.NodeDef]] = {}
    for node in users:
        new = copy_node(node)
        del new.input[:]
        seen: set[str] = set()
        for ref in node.input:
            refs = expand(node_name(ref), set()) if is_control(ref) and _is_switch(index.get(ref)) else [ref]
            for r in refs:
                if r not in seen and not (is_control(r) and node_name(r) == node.name):
                    seen.add(r)
                    new.input.append(r)
        data = [r for r in new.input if not is_control(r)]
        new.input[:] = data + [r for r in new.input if is_control(r)]
        plan.put(node.name, [new])
    # Each reader Identity goes right after the Switch it reads (stable order).
    for ref, node in readers.items():
        placed.setdefault(node_name(ref), []).append(node)
    position = {n.name: i for i, n in enumerate(index.nodes)}
    for switch_name in sorted(placed, key=position.__getitem__):
        base = plan.replace.get(switch_name, [index.by_name[switch_name]])
        plan.put(switch_name, [*base, *placed[switch_name]])
    return apply_plan(graph_def, plan, keep_names)
