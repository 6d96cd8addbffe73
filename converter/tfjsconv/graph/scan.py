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
from collections.abc import Iterable
from typing import Any

from tfjsconv import datafiles
from tfjsconv.errors import ConversionError
from tfjsconv.graph.scan_graph import (
    _MAX_TRACE,
    _PATH_INPUTS,
    _SHAPE_INPUTS,
    UnsafeModelError,
    _check_call_graph,
    _graphs,
    _node_of,
    _save_path,
)
from tfjsconv.graph.scan_provenance import _path_ok, _Sources
from tfjsconv.graph.scan_sizes import _allocation_problem, _const_problem, _shape_elements

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Allowlist:
    """Op names that may appear in a model, and the save-path-only ones."""

    ops: frozenset[str]
    save_only: frozenset[str]


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


def derive_compute_ops(op_defs: Iterable[Any]) -> list[str]:
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


def registered_op_defs() -> list[Any]:
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


# ------------------------------------------------------------------ the scan


@dataclasses.dataclass
class _Findings:
    ops: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # op -> where
    problems: list[str] = dataclasses.field(default_factory=list)

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


def _bound_assets(meta: Any) -> dict[str, tuple[bool | None, ...]]:
    """Function -> for each captured input, whether the loader binds it to an asset."""
    nodes = meta.object_graph_def.nodes
    out: dict[str, tuple[bool | None, ...]] = {}
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
