"""What the input is: its format (URL, ``.h5``, ``.keras`` zip, SavedModel, model.json,
frozen ``.pb``) and what the questions offer (SavedModel tags and signatures, frozen-graph
output candidates). ``WizardError`` is a problem with the input, shown as one line."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile

from tfjsconv.errors import ConversionError

PROG = "tensorflowjs_wizard"
CONVERTER = "tensorflowjs_converter"
USAGE = f"usage: {PROG} [--dryrun]"
URL = re.compile(r"^https?://", re.IGNORECASE)

# The order output formats are offered in (the input's default comes first).
_OUTPUT_ORDER = ("keras", "keras_keras", "keras_saved_model", "tfjs_layers_model", "tfjs_graph_model")
FORMAT_TITLES: dict[str, str] = {
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


def outputs_for_input(input_format: str) -> tuple[str, ...]:
    """The output formats ``tensorflowjs_converter`` accepts for ``input_format``."""
    from tfjsconv import api

    accepted = {out for inp, out in api.supported_pairs() if inp == input_format}
    return tuple(f for f in _OUTPUT_ORDER if f in accepted)


class WizardError(Exception):
    """Something about the input the wizard cannot work with (shown as one line)."""


@dataclasses.dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class MetaGraphInfo:
    tags: tuple[str, ...]
    signatures: tuple[SignatureInfo, ...]


@dataclasses.dataclass(frozen=True)
class Detection:
    """What the input looks like. ``input_format`` is None when nothing matched."""

    input_format: str | None
    path: str
    note: str = ""
    keras_version: str | None = None
    meta_graphs: tuple[MetaGraphInfo, ...] = ()
    output_node_candidates: tuple[str, ...] = ()


def _saved_model_pb(directory: str) -> str | None:
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
    from tfjsconv import proto_readers

    try:
        return proto_readers.read_saved_model_file(pb_path)
    except ConversionError as exc:
        raise WizardError(f"{pb_path} is not a readable SavedModel: {exc}") from None


def _tensor_desc(name: str, info) -> str:
    from tensorflow.core.framework import types_pb2

    dtype = types_pb2.DataType.Name(info.dtype).replace("DT_", "").lower()
    if info.tensor_shape.unknown_rank:
        shape = "?"
    else:
        shape = "[" + ", ".join("-1" if d.size < 0 else str(d.size) for d in info.tensor_shape.dim) + "]"
    return f"{name}: {dtype}{shape}"


def saved_model_meta_graphs(directory: str) -> tuple[MetaGraphInfo, ...]:
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


def _h5_keras_version(path: str) -> str | None:
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


def _model_json_format(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WizardError(f"{path} is not a readable model.json: {exc}") from None
    if not isinstance(data, dict):
        raise WizardError(f"{path} is not a TensorFlow.js model.json (not a JSON object)")
    return data.get("format")


def frozen_graph_outputs(path: str) -> tuple[str, ...]:
    """Names of nodes nothing else consumes: the likely ``--output_node_names``."""
    _tf_protos()
    from tfjsconv import proto_readers

    try:
        graph = proto_readers.read_graph_def(path)
    except ConversionError as exc:
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
    if URL.match(path):
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
