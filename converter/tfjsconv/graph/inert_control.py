"""Drop control inputs that cannot change what tfjs computes, and the weights only they kept.

TensorFlow 2 functions order every stateful op before the function returns, so a
variable read whose value the outputs never use still reaches them as a control input
(``Identity(relu, ^read)`` or through a ``NoOp``).  After freezing, the read is a
``Const``: grappler keeps it because fetch nodes keep their control inputs, and the
converter would write a weight no output needs (7.5% of an audio model's bytes).

In tfjs a control input only delays a node until its source has a value.  A source
whose whole ancestry has no control-flow op (Switch, Merge, Enter, Exit,
NextIteration, LoopCond: they decide *whether* and *in which frame* a node runs) and
no op with effects tfjs orders (TensorArray/TensorList/hash-table ops) always gets a
value once the fed inputs are there, so waiting on it changes nothing: such control
inputs are removed, then the nodes that only they kept alive.  Placeholders stay (a
model input must remain feedable).  Edits are in place: the graph holds the weights.
"""

from __future__ import annotations

from collections.abc import Iterable

from tfjsconv.graph.graph_utils import is_control, node_name

_ORDERING_OPS = frozenset(
    {
        "Switch",
        "RefSwitch",
        "Merge",
        "RefMerge",
        "Enter",
        "RefEnter",
        "Exit",
        "RefExit",
        "NextIteration",
        "RefNextIteration",
        "LoopCond",
    }
)
_EFFECT_PREFIXES = (
    "TensorArray",
    "TensorList",
    "HashTable",
    "MutableHashTable",
    "LookupTable",
    "InitializeTable",
    "Assign",
    "ResourceScatter",
    "Stack",
)


def _inert(graph_def) -> set[str]:
    """Nodes whose value needs no control-flow decision and orders no effect."""
    by_name = {n.name: n for n in graph_def.node}
    state: dict[str, bool] = {}
    for root in by_name:
        if root in state:
            continue
        # Iterative post-order DFS (graphs can be deep); cycles only pass through Merge.
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if name in state:
                continue
            node = by_name.get(name)
            if node is None:
                state[name] = False
                continue
            if node.op in _ORDERING_OPS or node.op.startswith(_EFFECT_PREFIXES):
                state[name] = False
                continue
            parents = [node_name(r) for r in node.input]
            if expanded:
                state[name] = all(state.get(p, False) for p in parents)
                continue
            stack.append((name, True))
            stack.extend((p, False) for p in parents if p not in state)
    return {name for name, ok in state.items() if ok}


def _reachable(graph_def, roots: Iterable[str]) -> set[str]:
    by_name = {n.name: n for n in graph_def.node}
    seen: set[str] = set()
    pending = [node_name(r) for r in roots]
    while pending:
        name = pending.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        pending.extend(node_name(r) for r in by_name[name].input)
    return seen


def drop_inert_control_inputs(graph_def, keep: Iterable[str]) -> list[str]:
    """Remove inert control inputs (in place) and the nodes ``keep`` then no longer
    reaches; returns the removed node names, in graph order."""
    keep = list(keep)
    inert = _inert(graph_def)
    before = _reachable(graph_def, keep)
    changed = False
    for node in graph_def.node:
        if node.name not in before:
            continue
        refs = [r for r in node.input if not (is_control(r) and node_name(r) in inert)]
        if len(refs) != len(node.input):
            node.input[:] = refs
            changed = True
    if not changed:
        return []
    after = _reachable(graph_def, keep)
    removed = [
        n.name
        for n in graph_def.node
        if n.name in before and n.name not in after and not n.op.startswith("Placeholder")
    ]
    gone = set(removed)
    for index in reversed(range(len(graph_def.node))):
        if graph_def.node[index].name in gone:
            del graph_def.node[index]
    return removed
