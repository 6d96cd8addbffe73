"""Will tfjs 4.22's graph executor compute the outputs?  A static mirror of its rules.

``tf.loadGraphModel`` accepts almost any GraphDef and only fails when
``execute``/``executeAsync`` cannot produce an output ("Cannot compute the outputs
... from the provided inputs").  This module applies the executor's rules to the
GraphDef at conversion time, without Node, so such a model is refused with one line
instead of written.  The rules (``tfjs-converter/src/executor``,
``operations/operation_mapper.ts``, ``operations/executors/control_executor.ts``):

* every input reference names a node of the same graph (the mapper dereferences it);
* a control input ``^n`` is just an input whose value is ``n:0``; the executor pushes
  a node once all its inputs have a value in the current frame, a ``Merge`` once any
  has;  ``Const`` nodes are weights and ``Placeholder``s are fed (the signature's
  inputs, or every placeholder when the signature names none); other nodes without
  inputs run first, as "init nodes";
* a ``Switch`` defines only one of its two outputs, so a control input from a Switch
  (``s:0``, the false branch) never fires inside a loop body or a true branch;
* ``If``/``While`` (and the stateless forms) run library functions by name, whose
  bodies follow the same rules with their input arguments as the fed inputs.

Besides, an op tfjs runs with other semantics than TensorFlow is a problem too
(``runs_otherwise``): a model containing it would run and compute something else.

The forward pass treats both outputs of a Switch as possibly defined (either branch
may run), so a problem it reports is certain for some input, and it costs one pass
over the nodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from tfjsconv.errors import ConversionError
from tfjsconv.graph.graph_utils import is_control, node_name
from tfjsconv.graph.rewrites.exact_op_rewrites import is_training_batch_norm

SWITCH_OPS = frozenset({"Switch", "RefSwitch"})
MERGE_OPS = frozenset({"Merge", "RefMerge"})
# tfjs op -> attrs naming the library functions it runs.
FUNCTION_ATTRS = {
    "If": ("then_branch", "else_branch"),
    "StatelessIf": ("then_branch", "else_branch"),
    "While": ("cond", "body"),
    "StatelessWhile": ("cond", "body"),
}
V1_CONTROL_FLOW_OPS = frozenset({"Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond"})


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why tfjs cannot compute an output: the node at fault and what to do instead."""

    node: str
    op: str
    reason: str
    alternative: str
    graph: str = ""  # "" = the model graph, else "function NAME" / "initializer"

    def message(self) -> str:
        where = f" in {self.graph}" if self.graph else ""
        return (
            f"TensorFlow.js 4.22 cannot run this graph: node '{self.node}' ({self.op}){where} "
            f"{self.reason}; {self.alternative}"
        )


def _function_ref(ref: str) -> str:
    """Node name of a reference inside a FunctionDef body (``n:out:0`` / ``arg``)."""
    name = ref[1:] if ref.startswith("^") else ref
    return name.split(":", 1)[0]


def _uses_v1_control_flow(nodes) -> bool:
    return any(n.op in V1_CONTROL_FLOW_OPS for n in nodes)


def _alternative(nodes) -> str:
    if _uses_v1_control_flow(nodes):
        return "convert with --control_flow_v2=True to keep TensorFlow's functional control flow"
    return "give the missing tensor as a model input, or export a signature that does not need it"


def graph_problems(
    nodes: Sequence,
    fed: Iterable[str],
    outputs: Iterable[str],
    *,
    function_refs: bool = False,
    library: set[str] | None = None,
    graph: str = "",
) -> list[Problem]:
    """Problems that keep ``outputs`` (node or tensor names) from being computed.

    ``nodes`` are NodeDefs; ``fed`` the node names tfjs is given values for;
    ``function_refs`` parses FunctionDef-style references; ``library`` is the set of
    function names available to If/While (None: do not check function references).
    """
    ref_node = _function_ref if function_refs else node_name
    by_name = {n.name: n for n in nodes}
    fed_names = {ref_node(f) for f in fed}
    problems: list[Problem] = []
    alternative = _alternative(nodes)

    inputs_of: dict[str, list[str]] = {}
    for node in nodes:
        refs = [ref_node(r) for r in node.input]
        for ref, name in zip(node.input, refs, strict=False):
            if name not in by_name and name not in fed_names:
                problems.append(
                    Problem(
                        node.name,
                        node.op,
                        f"reads '{ref}', which is not in the graph",
                        "this model file is inconsistent",
                        graph,
                    )
                )
            elif is_control(ref) and by_name.get(name) is not None and by_name[name].op in SWITCH_OPS:
                problems.append(
                    Problem(
                        node.name,
                        node.op,
                        f"has a control input from Switch '{name}', which tfjs reads as the Switch's false output",
                        alternative,
                        graph,
                    )
                )
        inputs_of[node.name] = refs
        if library is not None:
            for attr in FUNCTION_ATTRS.get(node.op, ()):
                fn = node.attr[attr].func.name if attr in node.attr else ""
                if fn not in library:
                    problems.append(
                        Problem(
                            node.name,
                            node.op,
                            f"runs function '{fn}', which the model does not contain",
                            "this model file is inconsistent",
                            graph,
                        )
                    )
    if problems:
        return problems

    # Forward pass in the executor's order: weights, fed inputs and init nodes first.
    ready: set[str] = set()
    children: dict[str, list[str]] = {}
    waiting: dict[str, int] = {}
    stack: list[str] = []
    for node in nodes:
        refs = inputs_of[node.name]
        distinct = set(refs)
        for src in distinct:
            children.setdefault(src, []).append(node.name)
        waiting[node.name] = 1 if node.op in MERGE_OPS and refs else len(distinct)
        seeded = (
            node.op == "Const"
            or node.name in fed_names
            or (not refs and not node.op.startswith("Placeholder"))
        )
        if seeded:
            stack.append(node.name)
    stack.extend(sorted(name for name in fed_names if name not in by_name))
    while stack:
        name = stack.pop()
        if name in ready:
            continue
        ready.add(name)
        for child in children.get(name, ()):
            if child in ready:
                continue
            waiting[child] -= 1
            if waiting[child] <= 0:
                stack.append(child)

    for out in outputs:
        target = ref_node(out)
        if target in ready or target not in by_name:
            if target not in by_name and target not in fed_names:
                problems.append(
                    Problem(
                        target,
                        "?",
                        "is a model output that is not in the graph",
                        "this model file is inconsistent",
                        graph,
                    )
                )
            continue
        problems.append(_blocker(target, by_name, inputs_of, ready, fed_names, alternative, graph, out))
    return problems


def _blocker(target, by_name, inputs_of, ready, fed_names, alternative, graph, out) -> Problem:
    """Walk back from an uncomputable output to the first node that blocks it."""
    seen: set[str] = set()
    name = target
    while True:
        seen.add(name)
        node = by_name[name]
        missing = [r for r in inputs_of[name] if r not in ready and r in by_name]
        if node.op.startswith("Placeholder") and not inputs_of[name]:
            return Problem(
                name,
                node.op,
                f"is a placeholder that is not a model input, and output '{out}' needs it",
                "give it as a model input (signature) or freeze its value",
                graph,
            )
        nxt = [m for m in missing if m not in seen]
        if not nxt:
            return Problem(
                name,
                node.op,
                f"never gets all its inputs (a cycle not broken by a Merge), so output '{out}' "
                "is never computed",
                alternative,
                graph,
            )
        name = nxt[0]


def runs_otherwise(nodes: Sequence, graph: str = "") -> list[Problem]:
    """Nodes tfjs would run but compute something else with (what the exact rewrites left)."""
    return [
        Problem(
            node.name,
            node.op,
            "normalizes with the batch's own statistics (is_training=True), but tfjs runs FusedBatchNorm "
            "with its mean/variance inputs only",
            "export the model in inference mode (training=False); a float32 one whose batch mean/variance "
            "outputs are unused is rewritten automatically",
            graph,
        )
        for node in nodes
        if is_training_batch_norm(node)
    ]


def model_problems(
    graph_def,
    signature: dict | None,
    initializer_graph_def=None,
    initializer_signature: dict | None = None,
) -> list[Problem]:
    """Every problem tfjs would hit computing the model's signature outputs.

    ``signature`` is the model.json ``signature`` (inputs/outputs -> {"name": ...});
    outputs default to nodes nothing reads, inputs to every placeholder (tfjs's rules).
    """
    signature = signature or {}
    nodes = list(graph_def.node)
    library = {f.signature.name: f for f in graph_def.library.function}
    fed = [info["name"] for info in (signature.get("inputs") or {}).values()]
    if not fed:
        fed = [n.name for n in nodes if n.op.startswith("Placeholder")]
    outputs = [info["name"] for info in (signature.get("outputs") or {}).values()]
    if not outputs:
        read = {node_name(r) for n in nodes for r in n.input}
        outputs = [n.name for n in nodes if n.name not in read]
    problems = graph_problems(nodes, fed, outputs, library=set(library)) + runs_otherwise(nodes)
    for name in sorted(library):
        function = library[name]
        problems.extend(runs_otherwise(function.node_def, graph=f"function {name}"))
        args = [a.name for a in function.signature.input_arg]
        rets = [function.ret[a.name] for a in function.signature.output_arg if a.name in function.ret]
        problems.extend(
            graph_problems(
                list(function.node_def),
                args,
                rets,
                function_refs=True,
                library=set(library),
                graph=f"function {name}",
            )
        )
    if initializer_graph_def is not None and len(initializer_graph_def.node):
        init_outputs = [
            info["name"] for info in ((initializer_signature or {}).get("outputs") or {}).values()
        ]
        problems.extend(
            graph_problems(list(initializer_graph_def.node), [], init_outputs, graph="the initializer")
        )
    return problems


def check_model(
    graph_def,
    signature: dict | None,
    initializer_graph_def=None,
    initializer_signature: dict | None = None,
) -> None:
    """Raise ``ConversionError`` (one line, first problem) if tfjs cannot run the model."""
    problems = model_problems(graph_def, signature, initializer_graph_def, initializer_signature)
    if problems:
        more = (
            f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
            if len(problems) > 1
            else ""
        )
        raise ConversionError(problems[0].message() + more)
