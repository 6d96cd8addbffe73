"""Scan untrusted TensorFlow protobufs *before* TensorFlow loads anything from them.

``tf.saved_model.load`` runs code from the model: resource initializers, restore
functions, the TF1 init op.  Grappler's constant folding then executes every op whose
inputs are constants.  So a SavedModel or GraphDef is only handed to TensorFlow after
this module has read it as plain protobuf messages (no graph is built, no op runs) and
found nothing but allowed ops, assets inside the model directory, a bounded function
library, constants and shape-driven allocations of bounded size, and variables whose
declared sizes fit in the checkpoint's data files.

The allowlist is ``data/tfjs_ops.json`` (what the converted model may contain) plus
``data/load_time_ops.json`` (what loading, restoring and freezing need), minus the ops
``load_time_ops.json`` names as never allowed.  Save-only ops (``SaveV2``...) are
allowed only on the saver's save path, which TensorFlow never runs while loading.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

from tfjsconv import datafiles
from tfjsconv.errors import ConversionError

log = logging.getLogger(__name__)

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
_SHAPE_INPUTS: Mapping[str, Tuple[int, str]] = {
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


class UnsafeModelError(ConversionError):
    """The model holds something that would run or read outside the model if loaded."""


@dataclasses.dataclass(frozen=True)
class Allowlist:
    """Op names that may appear in a model, and the save-path-only ones."""

    ops: FrozenSet[str]
    save_only: FrozenSet[str]


def allowlist() -> Allowlist:
    """tfjs runtime ops + load/restore/freeze ops + pure compute ops, minus the
    never-allowed ones.  (What the *converted* model may hold is checked after
    freezing against tfjs_ops.json alone.)"""
    tfjs = datafiles.load_json("tfjs_ops.json")
    extra = datafiles.load_json("load_time_ops.json")
    names = {op for ops in tfjs["categories"].values() for op in ops} | set(tfjs["debug_ops"])
    names |= {op for ops in extra["load_time"].values() for op in ops}
    names |= set(datafiles.load_json("compute_ops.json")["ops"])
    names -= set(extra["never"])
    return Allowlist(frozenset(names), frozenset(extra["save_only"]))


# Op names that touch files, the network, processes, Python, queues, datasets or
# summaries, or that debug/serialize through side channels: never "pure compute" even
# when TensorFlow does not mark them stateful (ReadFile, MatchingFiles are not).
_IO_NAME = re.compile(
    r"File|Read|Write|Save|Restore|Print|Dataset|Iterator|PyFunc|Queue|Reader|Summary|Proto|Immutable|"
    r"Load|Socket|Rpc|Send|Recv|Tpu|TPU|Remote|Checkpoint|Matching|Glob|Fingerprint|Directory|Env|Debug|"
    r"Barrier|Accumulator|Stage|Unstage|MapPeek|MapUnstage|Collective|Nccl|Xla|Batch(Function)?$|"
    r"Decode|Encode|Parse|Serialize|Deserialize|Jpeg|Png|Gif|Bmp|Wav|CSV"
)
_PATH_ATTR = re.compile(r"file|path|url|stream|source|region|dir|container|shared_name|device", re.IGNORECASE)


def derive_compute_ops(op_defs: Iterable[Any]) -> List[str]:
    """Pure compute ops of a TensorFlow op registry (``compute_ops.json``'s derivation).

    Kept: not stateful, no resource/variant-typed inputs or outputs, no string attr
    that could name a file, URL or device, not an internal ``_`` op, and a name that
    does not match ``_IO_NAME`` (which also drops the parsers of image, audio, CSV and
    proto bytes: attack surface that grappler would run on constant inputs).  What is
    left computes on tensors in memory and nothing else.
    """
    resource, variant = 20, 21  # DataType enums DT_RESOURCE, DT_VARIANT
    out = []
    for op in op_defs:
        if op.is_stateful or op.name.startswith("_") or _IO_NAME.search(op.name):
            continue
        args = list(op.input_arg) + list(op.output_arg)
        if any(a.type in (resource, variant) for a in args):
            continue
        if any(
            a.type in ("string", "list(string)", "func", "list(func)") and _PATH_ATTR.search(a.name)
            for a in op.attr
        ):
            continue
        out.append(op.name)
    return sorted(out)


def registered_op_defs() -> List[Any]:
    """Every OpDef the installed TensorFlow registers (imports TensorFlow)."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    buf = c_api.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList()
        op_list.ParseFromString(c_api.TF_GetBuffer(buf))
    finally:
        c_api.TF_DeleteBuffer(buf)
    return list(op_list.op)


# ------------------------------------------------------------------ graph helpers


def _node_of(ref: str) -> str:
    """``^a``, ``a``, ``a:1`` -> ``a`` (GraphDef references)."""
    return ref.lstrip("^").split(":")[0]


def _called(node: Any, library: Mapping[str, Any]) -> List[str]:
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

    name: Optional[str]
    nodes: Dict[str, Any]
    args: List[str]  # input arg names (functions only)

    @property
    def label(self) -> str:
        return self.name if self.name is not None else "the graph"


def _by_name(nodes: Any, where: str) -> Dict[str, Any]:
    """Nodes by name; a repeated name is refused (a dict would hide all but the last)."""
    out = {n.name: n for n in nodes}
    if len(out) != len(nodes):
        raise UnsafeModelError(f"{where} has two nodes with the same name")
    return out


def _graphs(graph_def: Any) -> Tuple[_Graph, Dict[str, _Graph]]:
    top = _Graph(None, _by_name(graph_def.node, "the graph"), [])
    funcs: Dict[str, _Graph] = {}
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
    depth: Dict[str, int] = {}
    for root in sorted(funcs):
        if root in depth:
            continue
        stack: List[Tuple[str, Iterator[str]]] = [(root, iter(callees[root]))]
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


def _save_path(top: _Graph, funcs: Mapping[str, _Graph], save_tensor: str) -> Tuple[Set[str], Set[str]]:
    """Graph nodes feeding the saver's save tensor, and functions only they call.

    TensorFlow runs the save path only when *saving*; loading never does, so the
    save-only ops (``SaveV2``, ``MergeV2Checkpoints``) are accepted there and nowhere else.
    """
    if not save_tensor or _node_of(save_tensor) not in top.nodes:
        return set(), set()
    nodes: Set[str] = set()
    pending = [_node_of(save_tensor)]
    while pending:
        name = pending.pop()
        if name in nodes or name not in top.nodes:
            continue
        nodes.add(name)
        pending.extend(_node_of(i) for i in top.nodes[name].input)

    def reach(roots: Iterable[str]) -> Set[str]:
        seen: Set[str] = set()
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


# ------------------------------------------------------------- path provenance


@dataclasses.dataclass(frozen=True)
class _Sources:
    """Tensors TensorFlow's loader binds to files of the model itself."""

    graph_tensors: FrozenSet[str]  # top-level node names (asset Consts, saver filename)
    bound_assets: Mapping[str, Tuple[Optional[bool], ...]]  # function -> per-capture "is an asset"


def _producer(graph: _Graph, ref: str) -> Tuple[str, Optional[Any]]:
    """(name, node) producing ``ref``; node None means a function argument."""
    head = ref.lstrip("^").split(":")[0]
    if graph.name is not None and head in graph.args and head not in graph.nodes:
        return head, None
    return head, graph.nodes.get(head)


def _call_sites(funcs: Mapping[str, _Graph], top: _Graph, callee: str) -> Iterator[Tuple[_Graph, Any]]:
    for graph in [top, *funcs.values()]:
        for node in graph.nodes.values():
            if callee in _called(node, funcs):
                yield graph, node


def _arg_input(node: Any, callee: str, funcs: Mapping[str, _Graph], index: int) -> Optional[str]:
    """The caller-side input bound to argument ``index`` of ``callee`` (None: unknown)."""
    data = [i for i in node.input if not i.startswith("^")]
    if node.op == callee or node.op in _CALL_OPS or node.op in _WHILE_OPS:
        return data[index] if index < len(data) else None
    if node.op in _IF_OPS:
        return data[index + 1] if index + 1 < len(data) else None
    return None


def _path_ok(
    graph: _Graph, ref: str, top: _Graph, funcs: Mapping[str, _Graph], sources: _Sources, budget: List[int]
) -> Tuple[bool, str]:
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
    graph: _Graph, var: str, top: _Graph, funcs: Mapping[str, _Graph], sources: _Sources, budget: List[int]
) -> Tuple[bool, str]:
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


# ------------------------------------------------------------ size checks


def _shape_elements(dims: Iterable[int]) -> Optional[int]:
    total = 1
    for d in dims:
        if d < 0:
            return None
        total *= d
    return total


def _const_problem(node: Any) -> Optional[str]:
    """A Const that expands to more than ``MAX_EXPANDED_BYTES`` beyond what it stores."""
    tensor = node.attr["value"].tensor if "value" in node.attr else None
    if tensor is None:
        return None
    elements = _shape_elements(d.size for d in tensor.tensor_shape.dim)
    if elements is None:
        return "a constant with a negative dimension"
    if tensor.tensor_content:
        return None  # TensorFlow requires content to match the shape exactly
    nbytes = elements * _DTYPE_BYTES.get(tensor.dtype, 8)
    if nbytes > MAX_EXPANDED_BYTES:
        return f"a constant that expands to {nbytes} bytes"
    return None


def _const_ints(graph: _Graph, ref: str) -> Optional[List[int]]:
    """Integer values of the Const behind ``ref`` (through Identity), else None."""
    for _ in range(_MAX_TRACE):
        _, node = _producer(graph, ref)
        if node is None:
            return None
        if node.op in _IDENTITY_OPS and node.input:
            ref = node.input[0]
            continue
        if node.op != "Const":
            return None
        tensor = node.attr["value"].tensor
        if tensor.tensor_content:
            import numpy as np

            dtype = {3: np.int32, 9: np.int64}.get(tensor.dtype)
            if dtype is None:
                return None
            return [
                int(v) for v in np.frombuffer(tensor.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
            ]
        values = list(tensor.int_val) or list(tensor.int64_val)
        if not values:
            return None
        count = _shape_elements(d.size for d in tensor.tensor_shape.dim) or len(values)
        return [int(v) for v in values] + [int(values[-1])] * max(0, min(count, 64) - len(values))
    return None


def _allocation_problem(graph: _Graph, node: Any) -> Optional[str]:
    index, kind = _SHAPE_INPUTS[node.op]
    data = [i for i in node.input if not i.startswith("^")]
    if kind == "attr":
        values: Optional[List[int]] = (
            [d.size for d in node.attr["shape"].shape.dim] if "shape" in node.attr else None
        )
        kind = "shape"
    elif index >= len(data):
        return None
    else:
        values = _const_ints(graph, data[index])
    if values is None:
        return None
    elements = _shape_elements(values) if kind == "shape" else (values[0] if values else 0)
    if elements is None or elements < 0:
        return None  # TensorFlow rejects negative shapes before allocating
    dtype_attr = next((node.attr[k].type for k in ("dtype", "T", "element_dtype") if k in node.attr), 0)
    nbytes = elements * _DTYPE_BYTES.get(dtype_attr, 8)
    if nbytes > MAX_EXPANDED_BYTES:
        return f"{node.op} allocating {nbytes} bytes"
    return None


# ------------------------------------------------------------ reading GraphDefs

# A serialized protobuf message cannot exceed 2 GiB; larger files are not GraphDefs.
MAX_PROTO_BYTES = (1 << 31) - 1
_CHUNK = 1 << 20


def _read_varint(f: Any) -> Tuple[Optional[int], bytes]:
    raw = b""
    value = shift = 0
    while True:
        byte = f.read(1)
        if not byte:
            if raw:
                raise ValueError("truncated varint")
            return None, raw
        raw += byte
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value, raw
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def read_graph_def(path: str) -> Any:
    """Parse a binary GraphDef one top-level field at a time.

    ``ParseFromString(f.read())`` holds the whole file and the parsed message at once:
    two copies of a model near the 2 GiB protobuf limit.  Parsing field by field holds
    the parsed message plus the bytes of one node (GraphDef field 1).
    """
    from tensorflow.core.framework import graph_pb2

    size = os.path.getsize(path)
    if size > MAX_PROTO_BYTES:
        raise ConversionError(f"{path} is {size} bytes, larger than a GraphDef can be (2 GiB)")
    graph_def = graph_pb2.GraphDef()
    try:
        with open(path, "rb") as f:
            while True:
                tag, tag_raw = _read_varint(f)
                if tag is None:
                    break
                wire = tag & 7
                if wire == 2:
                    length, length_raw = _read_varint(f)
                    if length is None or length > size:
                        raise ValueError("bad length")
                    payload = f.read(length)
                    if len(payload) != length:
                        raise ValueError("truncated field")
                    if tag >> 3 == 1:  # a NodeDef: parsed in place, no concatenated copy
                        graph_def.node.add().ParseFromString(payload)
                    else:
                        graph_def.MergeFromString(tag_raw + length_raw + payload)
                    del payload
                elif wire == 0:
                    value, value_raw = _read_varint(f)
                    if value is None:
                        raise ValueError("truncated field")
                    graph_def.MergeFromString(tag_raw + value_raw)
                elif wire in (1, 5):
                    width = 8 if wire == 1 else 4
                    payload = f.read(width)
                    if len(payload) != width:
                        raise ValueError("truncated field")
                    graph_def.MergeFromString(tag_raw + payload)
                else:
                    raise ValueError(f"wire type {wire}")
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeError...
        raise ConversionError(f"cannot read frozen GraphDef {path}: {type(e).__name__}") from None
    return graph_def


# ------------------------------------------------------------------ the scan


@dataclasses.dataclass
class _Findings:
    ops: Dict[str, Set[str]] = dataclasses.field(default_factory=dict)  # op -> where
    problems: List[str] = dataclasses.field(default_factory=list)

    def op(self, op: str, where: str) -> None:
        self.ops.setdefault(op, set()).add(where)

    def message(self) -> str:
        parts = []
        if self.ops:
            listed = "; ".join(
                f"{op} (in {', '.join(sorted(w)[:3])}{', ...' if len(w) > 3 else ''})"
                for op, w in sorted(self.ops.items())
            )
            parts.append(f"ops not allowed in a model to convert: {listed}")
        parts.extend(sorted(set(self.problems))[:5])
        return "; ".join(parts)


def _scan_graph_def(
    graph_def: Any, where: str, findings: _Findings, sources: _Sources, save_tensor: str = ""
) -> None:
    allowed = allowlist()
    top, funcs = _graphs(graph_def)
    _check_call_graph(top, funcs, where)
    save_nodes, save_funcs = _save_path(top, funcs, save_tensor)
    for graph in [top, *(funcs[name] for name in sorted(funcs))]:
        for node in graph.nodes.values():
            op = node.op
            on_save_path = (graph.name is None and node.name in save_nodes) or graph.name in save_funcs
            if op in funcs:
                pass
            elif op not in allowed.ops and not (on_save_path and op in allowed.save_only):
                findings.op(op, graph.label)
                continue
            if op == "Const":
                problem = _const_problem(node)
                if problem:
                    findings.problems.append(f"{problem} ({node.name} in {graph.label})")
            elif op in _SHAPE_INPUTS:
                problem = _allocation_problem(graph, node)
                if problem:
                    findings.problems.append(f"{problem} ({node.name} in {graph.label})")
            if op in _PATH_INPUTS and not on_save_path:
                data = [i for i in node.input if not i.startswith("^")]
                index = _PATH_INPUTS[op]
                ok, found = (
                    (False, "nothing")
                    if index >= len(data)
                    else _path_ok(graph, data[index], top, funcs, sources, [_MAX_TRACE])
                )
                if not ok:
                    findings.problems.append(
                        f"{op} in {graph.label} reads {found}, not a file of the SavedModel"
                    )


def _check_assets(model_dir: str, meta: Any, follow_symlinks: bool = False) -> None:
    """Asset file names must stay inside ``<model_dir>/assets`` (no ``..``, absolute
    paths or, unless ``follow_symlinks``, symlinks out of the model)."""
    resolve = os.path.abspath if follow_symlinks else os.path.realpath
    root = resolve(model_dir)
    for asset in meta.asset_file_def:
        name = asset.filename
        parts = name.replace("\\", "/").split("/")
        if not name or os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts or ":" in name:
            raise UnsafeModelError(
                f"SavedModel {model_dir}: asset path {name!r} is not a file inside its assets directory"
            )
        full = resolve(os.path.join(model_dir, "assets", name))
        if os.path.commonpath([root, full]) != root:
            raise UnsafeModelError(
                f"SavedModel {model_dir}: asset {name!r} resolves outside the model directory"
            )


def _bound_assets(meta: Any) -> Dict[str, Tuple[Optional[bool], ...]]:
    """Function -> for each captured input, whether the loader binds it to an asset."""
    nodes = meta.object_graph_def.nodes
    out: Dict[str, Tuple[Optional[bool], ...]] = {}
    for name, concrete in meta.object_graph_def.concrete_functions.items():
        flags = []
        for node_id in concrete.bound_inputs:
            flags.append(0 <= node_id < len(nodes) and nodes[node_id].WhichOneof("kind") == "asset")
        out[name] = tuple(flags)
    return out


def _check_checkpoint(model_dir: str) -> None:
    """Declared variable sizes must fit in the data files (RestoreV2 allocates the
    declared shape before it reads a byte)."""
    prefix = os.path.join(model_dir, "variables", "variables")
    if not os.path.isfile(prefix + ".index"):
        return
    directory = os.path.dirname(prefix)
    data_bytes = sum(
        os.path.getsize(os.path.join(directory, f))
        for f in os.listdir(directory)
        if f.startswith("variables.data-")
    )
    try:
        from tensorflow.python.training import py_checkpoint_reader

        reader = py_checkpoint_reader.NewCheckpointReader(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as e:  # noqa: BLE001 - the reader raises several types
        raise ConversionError(
            f"corrupt SavedModel: cannot read the variables index in {model_dir} ({type(e).__name__})"
        ) from None
    declared = 0
    for name, shape in shapes.items():
        dtype = dtypes.get(name)
        if dtype is None or dtype.name == "string":
            continue
        elements = _shape_elements(shape)
        if elements is None:
            raise UnsafeModelError(f"SavedModel {model_dir}: variable {name} has a negative dimension")
        declared += elements * dtype.size
    if declared > data_bytes:
        raise UnsafeModelError(
            f"SavedModel {model_dir}: its variables declare {declared} bytes but the data files hold "
            f"{data_bytes}"
        )


def _refuse(findings: _Findings, what: str) -> None:
    if not findings.ops and not findings.problems:
        return
    raise UnsafeModelError(
        f"refusing to load {what}: {findings.message()}; nothing was run "
        "(--allow_unsafe_deserialization lifts this for a trusted model)"
    )


def scan_saved_model(model_dir: str, meta: Any, *, allow_unsafe: bool, follow_symlinks: bool = False) -> None:
    """Check the MetaGraph TensorFlow is about to load from ``model_dir``.

    Asset paths and variable sizes are always checked: a model that reads outside
    itself or declares impossible sizes is broken, trusted or not.
    """
    _check_assets(model_dir, meta, follow_symlinks)
    _check_checkpoint(model_dir)
    if allow_unsafe:
        top, funcs = _graphs(meta.graph_def)
        _check_call_graph(top, funcs, f"SavedModel {model_dir}")
        log.warning("--allow_unsafe_deserialization: not checking the ops of SavedModel %s", model_dir)
        return
    asset_tensors = {_node_of(a.tensor_info.name) for a in meta.asset_file_def if a.tensor_info.name}
    saver = meta.saver_def
    graph_tensors = asset_tensors | (
        {_node_of(saver.filename_tensor_name)} if saver.filename_tensor_name else set()
    )
    sources = _Sources(frozenset(graph_tensors), _bound_assets(meta))
    findings = _Findings()
    _scan_graph_def(
        meta.graph_def, f"SavedModel {model_dir}", findings, sources, save_tensor=saver.save_tensor_name
    )
    _refuse(findings, f"SavedModel {model_dir}")


def scan_graph_def(graph_def: Any, path: str, *, allow_unsafe: bool) -> None:
    """Check a frozen GraphDef before grappler executes its constant subgraphs."""
    if allow_unsafe:
        top, funcs = _graphs(graph_def)
        _check_call_graph(top, funcs, path)
        log.warning("--allow_unsafe_deserialization: not checking the ops of %s", path)
        return
    findings = _Findings()
    _scan_graph_def(graph_def, path, findings, _Sources(frozenset(), {}))
    _refuse(findings, f"frozen model {path}")
