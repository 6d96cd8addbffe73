"""``tensorflowjs_wizard``: asks what ``tensorflowjs_converter`` needs, then runs it.

Three layers, so everything but the prompts is testable without a terminal:

* ``detect`` looks at the input (URL, ``.h5``, ``.keras`` zip, SavedModel, model.json,
  frozen ``.pb``) and reads what the questions offer (SavedModel tags and signatures,
  frozen-graph output candidates);
* ``ask`` puts only the applicable questions through ``questionary`` (PyInquirer, which
  the reference used, is unmaintained and pins an ancient prompt_toolkit);
* ``build_argv`` / ``format_command`` / ``bazel_target`` turn the answers into the exact
  command line and the equivalent Bazel target, which are printed so the conversion can
  be repeated without the wizard.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import sys
import zipfile
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple

from tfjsconv import formats
from tfjsconv.errors import report_internal_error
from tfjsconv.options import DEFAULT_OUTPUT_FORMAT, DEFAULT_SHARD_SIZE_BYTES, INPUT_FORMATS

PROG = "tensorflowjs_wizard"
CONVERTER = "tensorflowjs_converter"
USAGE = f"usage: {PROG} [--dryrun]"
_URL = re.compile(r"^https?://", re.IGNORECASE)

# The order output formats are offered in (the input's default comes first).
_OUTPUT_ORDER = ("keras", "keras_keras", "keras_saved_model", "tfjs_layers_model", "tfjs_graph_model")
FORMAT_TITLES: Dict[str, str] = {
    "keras": "Keras HDF5 model (.h5)",
    "keras_keras": "Keras v3 model (.keras)",
    "keras_saved_model": "Keras SavedModel",
    "tf_saved_model": "TensorFlow SavedModel",
    "tf_hub": "TensorFlow Hub module (URL)",
    "tf_frozen_model": "TensorFlow frozen graph (.pb)",
    "tfjs_layers_model": "TensorFlow.js layers model (model.json)",
    "tfjs_graph_model": "TensorFlow.js graph model (model.json)",
}
# Ops that are never a model's real output, so never offered as output nodes.
_NOT_OUTPUT_OPS = frozenset(
    {
        "NoOp",
        "Assert",
        "SaveV2",
        "RestoreV2",
        "Placeholder",
        "Const",
        "VarHandleOp",
        "VariableV2",
        "AssignVariableOp",
        "Print",
        "PrintV2",
    }
)


def outputs_for_input(input_format: str) -> Tuple[str, ...]:
    """The output formats ``tensorflowjs_converter`` accepts for ``input_format``."""
    from tfjsconv import api

    accepted = {out for inp, out in api.supported_pairs() if inp == input_format}
    return tuple(f for f in _OUTPUT_ORDER if f in accepted)


class WizardError(Exception):
    """Something about the input the wizard cannot work with (shown as one line)."""


# ---------------------------------------------------------------------------- detection


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class MetaGraphInfo:
    tags: Tuple[str, ...]
    signatures: Tuple[SignatureInfo, ...]


@dataclasses.dataclass(frozen=True)
class Detection:
    """What the input looks like. ``input_format`` is None when nothing matched."""

    input_format: Optional[str]
    path: str
    note: str = ""
    keras_version: Optional[str] = None
    meta_graphs: Tuple[MetaGraphInfo, ...] = ()
    output_node_candidates: Tuple[str, ...] = ()


def _saved_model_pb(directory: str) -> Optional[str]:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _tf_protos() -> None:
    """TensorFlow's protos import all of TensorFlow: do it the converter's way
    (``tf_env``: quiet, oneDNN off, no JAX) so the conversion the wizard runs in this
    process is the same as a ``tensorflowjs_converter`` run."""
    from tfjsconv import tf_env

    tf_env.import_tensorflow()


def _parse_saved_model(pb_path: str):
    _tf_protos()
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        if pb_path.endswith(".pbtxt"):
            with open(pb_path, encoding="utf-8") as f:
                text_format.Parse(f.read(), proto)
        else:
            with open(pb_path, "rb") as f:
                proto.ParseFromString(f.read())
    except Exception as exc:  # protobuf raises several unrelated types
        raise WizardError(f"{pb_path} is not a readable SavedModel: {exc}") from None
    return proto


def _tensor_desc(name: str, info) -> str:
    from tensorflow.core.framework import types_pb2

    dtype = types_pb2.DataType.Name(info.dtype).replace("DT_", "").lower()
    if info.tensor_shape.unknown_rank:
        shape = "?"
    else:
        shape = "[" + ", ".join("-1" if d.size < 0 else str(d.size) for d in info.tensor_shape.dim) + "]"
    return f"{name}: {dtype}{shape}"


def saved_model_meta_graphs(directory: str) -> Tuple[MetaGraphInfo, ...]:
    """Tags and signatures of every MetaGraph, in file order; signatures sorted by name."""
    pb = _saved_model_pb(directory)
    if pb is None:
        raise WizardError(f"no saved_model.pb in {directory}")
    proto = _parse_saved_model(pb)
    metas = []
    for meta in proto.meta_graphs:
        sigs = []
        for name in sorted(meta.signature_def):
            if name.startswith("__"):  # __saved_model_init_op and friends: not callable
                continue
            sig = meta.signature_def[name]
            sigs.append(
                SignatureInfo(
                    name=name,
                    inputs=tuple(_tensor_desc(k, sig.inputs[k]) for k in sorted(sig.inputs)),
                    outputs=tuple(_tensor_desc(k, sig.outputs[k]) for k in sorted(sig.outputs)),
                )
            )
        metas.append(MetaGraphInfo(tags=tuple(meta.meta_info_def.tags), signatures=tuple(sigs)))
    return tuple(metas)


def is_keras_saved_model(directory: str) -> bool:
    """A SavedModel written by Keras: keras_metadata.pb, or a Keras root object."""
    if os.path.isfile(os.path.join(directory, "keras_metadata.pb")):
        return True
    if os.path.isfile(os.path.join(directory, "assets", "saved_model.json")):
        return True
    pb = _saved_model_pb(directory)
    if pb is None:
        return False
    proto = _parse_saved_model(pb)
    for meta in proto.meta_graphs:
        nodes = meta.object_graph_def.nodes
        if nodes and "keras" in nodes[0].user_object.identifier:
            return True
    return False


def _h5_keras_version(path: str) -> Optional[str]:
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return str(version) if version is not None else None


def _is_keras_v3_zip(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
    return "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names)


def _model_json_format(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WizardError(f"{path} is not a readable model.json: {exc}") from None
    if not isinstance(data, dict):
        raise WizardError(f"{path} is not a TensorFlow.js model.json (not a JSON object)")
    return data.get("format")


def frozen_graph_outputs(path: str) -> Tuple[str, ...]:
    """Names of nodes nothing else consumes: the likely ``--output_node_names``."""
    _tf_protos()
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    try:
        with open(path, "rb") as f:
            graph.ParseFromString(f.read())
    except Exception as exc:
        raise WizardError(f"{path} is not a frozen GraphDef: {exc}") from None
    consumed = set()
    for node in graph.node:
        for inp in node.input:
            if not inp.startswith("^"):  # a control edge does not consume the value
                consumed.add(inp.split(":")[0])
    return tuple(sorted(n.name for n in graph.node if n.name not in consumed and n.op not in _NOT_OUTPUT_OPS))


def detect(path: str) -> Detection:
    """Guess the input format of ``path`` and gather what the follow-up questions need."""
    path = path.strip()
    if _URL.match(path):
        return Detection("tf_hub", path, note="TF Hub URL")
    if not os.path.exists(path):
        raise WizardError(f"input path does not exist: {path}")
    if os.path.isfile(path) and os.path.basename(path) in ("saved_model.pb", "saved_model.pbtxt"):
        path = os.path.dirname(path) or "."
    if os.path.isdir(path):
        if _saved_model_pb(path):
            metas = saved_model_meta_graphs(path)
            if is_keras_saved_model(path):
                return Detection(
                    "keras_saved_model", path, note="SavedModel written by Keras", meta_graphs=metas
                )
            return Detection("tf_saved_model", path, note="TensorFlow SavedModel", meta_graphs=metas)
        model_json = os.path.join(path, "model.json")
        if os.path.isfile(model_json):
            return _detect_model_json(model_json)
        return Detection(None, path, note="directory without saved_model.pb or model.json")
    if path.endswith(".json"):
        return _detect_model_json(path)
    if zipfile.is_zipfile(path):
        if _is_keras_v3_zip(path):
            return Detection("keras_keras", path, note="Keras v3 .keras archive")
        return Detection(None, path, note="zip file that is not a Keras v3 .keras archive")
    import h5py

    if h5py.is_hdf5(path):
        version = _h5_keras_version(path)
        if version is None:
            return Detection("keras", path, note="HDF5 file without a keras_version attribute")
        major = version.split(".")[0]
        saved_by = "Keras 3" if major == "3" else "Keras 2 (tf_keras)"
        return Detection(
            "keras", path, note=f"HDF5 model saved by {saved_by} {version}", keras_version=version
        )
    if path.endswith(".pb"):
        return Detection(
            "tf_frozen_model", path, note="frozen GraphDef", output_node_candidates=frozen_graph_outputs(path)
        )
    return Detection(None, path, note="unrecognized file")


def _detect_model_json(path: str) -> Detection:
    fmt = _model_json_format(path)
    if fmt == "graph-model":
        raise WizardError(
            f"{path} is already a TensorFlow.js graph model; graph models cannot be converted further"
        )
    return Detection("tfjs_layers_model", path, note="TensorFlow.js layers model")


# ---------------------------------------------------------------------------- answers


@dataclasses.dataclass(frozen=True)
class Answers:
    """Everything the questions produce; ``build_argv`` turns it into flags."""

    input_path: str
    input_format: str
    output_path: str
    output_format: Optional[str] = None
    saved_model_tags: Tuple[str, ...] = ()
    signature_name: Optional[str] = None
    output_node_names: Tuple[str, ...] = ()
    quantize_dtype: Optional[str] = None
    quantize_patterns: Tuple[str, ...] = ()
    weight_shard_size_bytes: int = DEFAULT_SHARD_SIZE_BYTES
    split_weights_by_layer: bool = False
    skip_op_check: bool = False
    strip_debug_ops: bool = True
    control_flow_v2: bool = False
    metadata: Tuple[Tuple[str, str], ...] = ()
    overwrite: bool = False

    @property
    def resolved_output_format(self) -> str:
        return self.output_format or DEFAULT_OUTPUT_FORMAT[self.input_format]


def build_argv(a: Answers) -> List[str]:
    """Converter arguments for ``a``: flags in a fixed order, then the two paths.

    Only non-default values are emitted, so the command stays short and readable.
    """
    out_fmt = a.resolved_output_format
    argv = [f"--input_format={a.input_format}"]
    if a.output_format and a.output_format != DEFAULT_OUTPUT_FORMAT.get(a.input_format):
        argv.append(f"--output_format={a.output_format}")
    if a.saved_model_tags and a.saved_model_tags != ("serve",):
        argv.append("--saved_model_tags=" + ",".join(a.saved_model_tags))
    if a.signature_name:
        argv.append(f"--signature_name={a.signature_name}")
    if a.output_node_names:
        argv.append("--output_node_names=" + ",".join(a.output_node_names))
    if a.quantize_dtype:
        argv.append(f"--quantize_{a.quantize_dtype}=" + ",".join(a.quantize_patterns or ("*",)))
    if a.weight_shard_size_bytes != DEFAULT_SHARD_SIZE_BYTES:
        argv.append(f"--weight_shard_size_bytes={a.weight_shard_size_bytes}")
    if a.split_weights_by_layer:
        argv.append("--split_weights_by_layer")
    if out_fmt == "tfjs_graph_model":
        if a.skip_op_check:
            argv.append("--skip_op_check")
        if not a.strip_debug_ops:
            argv.append("--strip_debug_ops=false")
        if a.control_flow_v2:
            argv.append("--control_flow_v2=true")
    if a.metadata:
        argv.append("--metadata=" + ",".join(f"{name}:{p}" for name, p in a.metadata))
    if a.overwrite:
        argv.append("--overwrite")
    argv += [a.input_path, a.output_path]
    return argv


def format_command(argv: Sequence[str]) -> str:
    """The shell command a person can paste: every argument ``shlex.quote``d."""
    return " ".join([CONVERTER] + [shlex.quote(arg) for arg in argv])


def _starlark(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # Starlark string escapes match JSON's for printable text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_starlark(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_starlark(k)}: {_starlark(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Starlark form for {value!r}")


def target_name(output_path: str) -> str:
    """A valid Bazel target name from the output path ('web/My Model' -> 'my_model')."""
    base = os.path.basename(os.path.normpath(output_path)) or "model"
    base = os.path.splitext(base)[0] if base.lower().endswith((".h5", ".keras")) else base
    name = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_").lower()
    return name or "model"


def package_path(path: str, package_dir: Optional[str]) -> Tuple[str, bool]:
    """``path`` relative to the BUILD file's directory, and whether it lies inside it.

    Bazel labels cannot be absolute or climb out of the package, so paths outside are
    returned unchanged and flagged for a comment.
    """
    if _URL.match(path) or package_dir is None:
        return path, True
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(package_dir)).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../"):
        return path, False
    return rel, True


def rule_attributes(flags: Sequence[str]) -> List[Tuple[str, Any]]:
    """Converter flags -> the ``tfjs_model`` attributes that mean the same, in order.

    The rule's attributes are named like the flags (``tfjsconv.formats.OPTIONS`` says
    each one's kind), so the command is the one place the wizard spells them out.
    """
    from tfjsconv.cli import parse_bool

    attrs: List[Tuple[str, Any]] = []
    for flag in flags:
        name, eq, value = flag[2:].partition("=")
        if name in ("input_format", "output_format"):
            attrs.append((name, value))
            continue
        if name not in formats.OPTIONS:
            continue  # --overwrite and friends: not a property of the target
        kind = formats.OPTIONS[name][0]
        if not eq:
            attrs.append((name, True))
        elif kind == "int":
            attrs.append((name, int(value)))
        elif kind == "bool":
            attrs.append((name, parse_bool(value)))
        elif kind in ("string_list", "patterns"):
            attrs.append((name, value.split(",")))
        elif kind == "metadata":
            attrs.append((name, dict(item.split(":", 1) for item in value.split(","))))
        else:
            attrs.append((name, value))
    return attrs


def bazel_target(a: Answers, package_dir: Optional[str] = None) -> str:
    """The ``tfjs_model`` target equivalent to the command (attributes named like the flags).

    With ``package_dir`` (where the BUILD file would live), paths become package-relative;
    a SavedModel directory gets a ``filegroup`` because ``src`` is a single label.
    """
    name = target_name(a.output_path)
    src, inside = package_path(a.input_path, package_dir)
    prelude = ""
    if not inside:
        prelude += "# NOTE: src must live in this package; copy the model here and fix the path.\n"
    if os.path.isdir(a.input_path) and not _URL.match(a.input_path):
        files = f"{name}_src"
        prelude += (
            f"filegroup(\n    name = {_starlark(files)},\n"
            f"    srcs = glob([{_starlark(src.rstrip('/') + '/**')}]),\n)\n\n"
        )
        src = ":" + files
    attrs: List[Tuple[str, Any]] = [("name", name), ("src", src)]
    for key, value in rule_attributes(build_argv(a)[:-2]):
        if key == "metadata":  # labels: package-relative paths
            value = {k: package_path(p, package_dir)[0] for k, p in value.items()}
        attrs.append((key, value))
    body = "".join(f"    {key} = {_starlark(value)},\n" for key, value in attrs)
    return f'load("@rules_tfjs//rules:defs.bzl", "tfjs_model")\n\n{prelude}tfjs_model(\n{body})'


# ---------------------------------------------------------------------------- questions


def _validate_positive_int(text: str) -> Any:
    text = text.strip()
    if text.isdigit() and int(text) > 0:
        return True
    return "enter a positive number of bytes"


def parse_metadata_answer(text: str) -> Tuple[Tuple[str, str], ...]:
    """'name:path.json, other:x.json' -> (('name', 'path.json'), ...)."""
    entries = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, path = item.partition(":")
        if not sep or not name.strip() or not path.strip():
            raise WizardError(f"metadata entries look like name:path.json, got {item!r}")
        entries.append((name.strip(), path.strip()))
    return tuple(entries)


def _validate_metadata(text: str) -> Any:
    try:
        for _, path in parse_metadata_answer(text):
            if not os.path.isfile(path):
                return f"metadata file not found: {path}"
    except WizardError as exc:
        return str(exc)
    return True


def _validate_input(text: str) -> Any:
    text = text.strip()
    if not text:
        return "enter a path or a TF Hub URL"
    if _URL.match(text) or os.path.exists(text):
        return True
    return f"no such file or directory: {text}"


def _is_nonempty(path: str) -> bool:
    if os.path.isdir(path):
        return bool(os.listdir(path))
    return os.path.exists(path)


class _Prompts:
    """Thin wrapper over questionary; Ctrl-C / Ctrl-D raise KeyboardInterrupt."""

    def __init__(self, questionary_module, output: Optional[IO[str]] = None):
        self.q = questionary_module
        self.kwargs = {"output": output} if output is not None else {}

    def text(self, message: str, default: str = "", validate=None) -> str:
        return self.q.text(message, default=default, validate=validate, **self.kwargs).unsafe_ask()

    def select(self, message: str, choices: Sequence[Tuple[str, Any]], default: Any = None) -> Any:
        items = [self.q.Choice(title=title, value=value) for title, value in choices]
        return self.q.select(message, choices=items, default=default, **self.kwargs).unsafe_ask()

    def confirm(self, message: str, default: bool) -> bool:
        return self.q.confirm(message, default=default, **self.kwargs).unsafe_ask()

    def checkbox(self, message: str, choices: Sequence[Tuple[str, Any]]) -> List[Any]:
        items = [self.q.Choice(title=title, value=value) for title, value in choices]
        return self.q.checkbox(message, choices=items, **self.kwargs).unsafe_ask()


def ask(prompts: _Prompts, say: Callable[[str], None]) -> Answers:
    """Ask only the questions that apply to the detected input; return the answers."""
    input_path = prompts.text("Path or URL of the model to convert:", validate=_validate_input).strip()
    det = detect(input_path)
    input_path = det.path
    say(f"Detected: {det.note}" + (f" -> {det.input_format}" if det.input_format else ""))
    formats = list(INPUT_FORMATS)
    if det.input_format:
        formats.remove(det.input_format)
        formats.insert(0, det.input_format)
    input_format = prompts.select(
        "Input format:",
        [(FORMAT_TITLES[f] + ("  (detected)" if f == det.input_format else ""), f) for f in formats],
        default=formats[0],
    )

    outputs = outputs_for_input(input_format)
    default_out = DEFAULT_OUTPUT_FORMAT[input_format]
    output_format = default_out
    if len(outputs) > 1:
        ordered = [default_out] + [f for f in outputs if f != default_out]
        output_format = prompts.select(
            "Output format:", [(FORMAT_TITLES[f] + f"  [{f}]", f) for f in ordered], default=default_out
        )

    tags: Tuple[str, ...] = ()
    signature: Optional[str] = None
    if input_format == "tf_saved_model" and det.meta_graphs:
        metas = det.meta_graphs
        meta = metas[0]
        if len(metas) > 1:
            meta = prompts.select(
                "MetaGraph tags:", [(",".join(m.tags) or "(no tags)", m) for m in metas], default=metas[0]
            )
        tags = meta.tags
        sigs = meta.signatures
        if sigs:
            names = [s.name for s in sigs]
            default_sig = "serving_default" if "serving_default" in names else names[0]
            signature = prompts.select(
                "Signature:",
                [(f"{s.name}  ({'; '.join(s.inputs)} -> {'; '.join(s.outputs)})", s.name) for s in sigs],
                default=default_sig,
            )
            if signature == "serving_default":
                signature = None  # the converter's default; keeps the command short
    elif input_format == "tf_hub":
        signature = prompts.text("Signature name (empty for 'default'):").strip() or None

    output_nodes: Tuple[str, ...] = ()
    if input_format == "tf_frozen_model":
        candidates = det.output_node_candidates
        if candidates:
            picked = prompts.checkbox("Output nodes:", [(n, n) for n in candidates])
            output_nodes = tuple(picked)
        if not output_nodes:
            text = prompts.text(
                "Output node names (comma-separated):",
                validate=lambda t: bool(t.strip()) or "at least one node is required",
            )
            output_nodes = tuple(n.strip() for n in text.split(",") if n.strip())

    tfjs_out = output_format in ("tfjs_layers_model", "tfjs_graph_model")
    quant_dtype: Optional[str] = None
    quant_patterns: Tuple[str, ...] = ()
    shard = DEFAULT_SHARD_SIZE_BYTES
    split = False
    if tfjs_out:
        # questionary replaces a None value by the title, hence the "none" sentinel.
        quant_dtype = prompts.select(
            "Quantize weights?",
            [
                ("No compression (float32)", "none"),
                ("float16 (half size, ~1e-3 relative error)", "float16"),
                ("uint8 (quarter size, affine per-tensor)", "uint8"),
                ("uint16 (half size, affine per-tensor)", "uint16"),
            ],
            default="none",
        )
        quant_dtype = None if quant_dtype == "none" else quant_dtype
        if quant_dtype:
            text = prompts.text("Weight name patterns to quantize (comma-separated, * = all):", default="*")
            quant_patterns = tuple(p.strip() for p in text.split(",") if p.strip()) or ("*",)
        shard = int(
            prompts.text(
                "Weight shard size in bytes:",
                default=str(DEFAULT_SHARD_SIZE_BYTES),
                validate=_validate_positive_int,
            ).strip()
        )
        if output_format == "tfjs_layers_model" and input_format != "tfjs_layers_model":
            split = prompts.confirm("Split weights into one group per layer?", default=False)

    skip_op_check, strip_debug, cf_v2 = False, True, False
    if output_format == "tfjs_graph_model":
        picked = prompts.checkbox(
            "Graph options (space to toggle, enter to accept):",
            [
                ("Skip the op check (keep ops tfjs cannot run)", "skip_op_check"),
                ("Keep debug ops (Assert, Print, CheckNumerics)", "keep_debug_ops"),
                ("Control flow v2 (While/If instead of Switch/Merge)", "control_flow_v2"),
            ],
        )
        skip_op_check = "skip_op_check" in picked
        strip_debug = "keep_debug_ops" not in picked
        cf_v2 = "control_flow_v2" in picked

    metadata: Tuple[Tuple[str, str], ...] = ()
    if tfjs_out:
        metadata = parse_metadata_answer(
            prompts.text(
                "User metadata files (name:path.json, comma-separated; empty for none):",
                validate=_validate_metadata,
            )
        )

    file_out = output_format in ("keras", "keras_keras")
    what = "file" if file_out else "directory"
    overwrite = False
    while True:
        output_path = prompts.text(
            f"Output {what}:", validate=lambda t: bool(t.strip()) or "required"
        ).strip()
        if file_out and os.path.isdir(output_path):
            output_path = os.path.join(
                output_path, "model.keras" if output_format == "keras_keras" else "model.h5"
            )
        if not _is_nonempty(output_path):
            break
        if prompts.confirm(f"{output_path} exists and is not empty. Overwrite it?", default=False):
            overwrite = True
            break

    return Answers(
        input_path=input_path,
        input_format=input_format,
        output_path=output_path,
        output_format=output_format,
        saved_model_tags=tags,
        signature_name=signature,
        output_node_names=output_nodes,
        quantize_dtype=quant_dtype,
        quantize_patterns=quant_patterns,
        weight_shard_size_bytes=shard,
        split_weights_by_layer=split,
        skip_op_check=skip_op_check,
        strip_debug_ops=strip_debug,
        control_flow_v2=cf_v2,
        metadata=metadata,
        overwrite=overwrite,
    )


# ---------------------------------------------------------------------------- main


def main(
    argv: Optional[Sequence[str]] = None,
    *,
    stdout: Optional[IO[str]] = None,
    stderr: Optional[IO[str]] = None,
) -> int:
    """Run the wizard; return the exit code (the converter's when it runs)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["-h"], ["--help"]):
        print(USAGE, file=stdout)
        return 0
    if argv not in ([], ["--dryrun"]):
        print(USAGE, file=stderr)
        return 2
    dryrun = argv == ["--dryrun"]
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        print(
            f"{PROG}: error: the wizard is interactive and needs a terminal; in scripts "
            f"and builds call {CONVERTER} with flags instead",
            file=stderr,
        )
        return 2
    try:
        import questionary
    except ImportError:
        print(f"{PROG}: error: the wizard needs questionary: pip install questionary", file=stderr)
        return 1

    def say(msg: str) -> None:
        print(msg, file=stdout, flush=True)

    try:
        answers = ask(_Prompts(questionary), say)
    except (KeyboardInterrupt, EOFError):
        print(f"{PROG}: cancelled; nothing was converted", file=stderr)
        return 130
    except WizardError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 1
    except Exception:  # a bug in the wizard: keep the traceback
        return report_internal_error(PROG, stderr)

    conv_argv = build_argv(answers)
    say("\nConverter command:\n  " + format_command(conv_argv))
    say("\nEquivalent Bazel target (BUILD.bazel):\n" + bazel_target(answers, os.getcwd()) + "\n")
    if dryrun:
        say("--dryrun: not converting.")
        return 0
    from tfjsconv import cli

    return cli.main(conv_argv, stdout=stdout, stderr=stderr)


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
