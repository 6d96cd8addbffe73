"""Entry points named by the dispatch table in ``tfjsconv.api`` (graph-model outputs).

Each ``fn(input_path, staging_dir, options)`` writes ``model.json`` and the weight
shards into ``staging_dir`` (a fresh empty directory; ``api.convert`` makes it atomic).
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from collections.abc import Sequence

from tfjsconv import proto_readers, tf_env
from tfjsconv.errors import ConversionError, first_line
from tfjsconv.graph import (
    checkpoint_source,
    lazy_weights,
    scan,
    weight_stash,
)
from tfjsconv.graph.freeze import FrozenModel, freeze_concrete_function
from tfjsconv.graph.writer import write_graph_model, write_streamed
from tfjsconv.options import ConversionOptions

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------- SavedModel


def _select_meta_graph(proto, tags: Sequence[str], path: str):
    wanted = sorted(set(tags))
    available = []
    for meta in proto.meta_graphs:
        meta_tags = sorted(set(meta.meta_info_def.tags))
        available.append(",".join(meta_tags) or "<none>")
        if meta_tags == wanted:
            return meta
    raise ConversionError(
        f"no MetaGraph with tags {','.join(wanted) or '<none>'} in SavedModel {path}; "
        f"available tag sets: {'; '.join(sorted(available))}"
    )


def _convert_saved_model(
    path: str,
    out_dir: str,
    options: ConversionOptions,
    default_signature: str,
    tags: Sequence[str] | None = None,
    use_own_tf_version: bool = False,
    streaming_enabled: bool = True,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """SavedModel -> graph model.  Large variables stream from the checkpoint unless
    ``streaming_enabled`` is False or the model cannot (TF1 ref variables): then all
    are loaded.  ``min_bytes``: what counts as large (and the weight stash's threshold)."""
    tf_env.import_tensorflow()
    proto = proto_readers.read_saved_model_proto(path)
    if tags is None:
        tags = tuple(options.saved_model_tags) or ("serve",)
    meta = _select_meta_graph(proto, tags, path)
    # Untrusted input: read as protobuf and checked before TensorFlow loads (runs) it.
    scan.scan_saved_model(
        path, meta, allow_unsafe=options.allow_unsafe_deserialization, follow_symlinks=options.follow_symlinks
    )
    signature_name = options.signature_name or default_signature
    if signature_name not in meta.signature_def:
        available = ", ".join(sorted(k for k in meta.signature_def if not k.startswith("__"))) or "none"
        raise ConversionError(
            f'signature "{signature_name}" does not exist in the SavedModel {path}; '
            f"available signatures: {available}"
        )
    generated_by = meta.meta_info_def.tensorflow_version
    tf1 = not len(meta.object_graph_def.nodes)
    checkpoint = checkpoint_source.saved_model_checkpoint(path) if streaming_enabled else None
    del proto, meta
    tf = tf_env.import_tensorflow()
    if use_own_tf_version:
        generated_by = tf.__version__
    generated_by = generated_by or tf.__version__
    if checkpoint is not None:

        def attempt(optimistic: bool):
            return _freeze_streaming(
                path, tags, signature_name, checkpoint, options, generated_by, min_bytes, optimistic, tf1
            )

        if write_streamed(attempt, out_dir, options, min_bytes):
            return
    log.info("loading SavedModel %s (signature %s)", path, signature_name)
    model = _load_saved_model(path, tags)
    func = _signature(model, signature_name, path)
    log.info("freezing variables")
    frozen = freeze_concrete_function(
        func,
        root=model,
        control_flow_v2=options.control_flow_v2,
        generated_by=generated_by,
    )
    # Drop the eager variables and traced graphs (reference cycles) before optimizing:
    # from here on the frozen GraphDef is the only copy of the weights.
    del func, model
    gc.collect()
    write_graph_model(frozen, out_dir, options, min_bytes=min_bytes)


def _load_saved_model(path: str, tags: Sequence[str], skip_checkpoint: bool = False):
    tf = tf_env.import_tensorflow()
    load_options = tf.saved_model.LoadOptions(experimental_skip_checkpoint=skip_checkpoint)
    try:
        return tf.saved_model.load(path, tags=list(tags), options=load_options)
    except Exception as e:
        raise ConversionError(f"cannot load SavedModel {path}: {type(e).__name__}: {first_line(e)}") from e


def _signature(model, signature_name: str, path: str):
    func = model.signatures.get(signature_name) if hasattr(model, "signatures") else None
    if func is None:
        raise ConversionError(f'signature "{signature_name}" cannot be loaded from the SavedModel {path}')
    return func


def _freeze_streaming(
    path: str,
    tags: Sequence[str],
    signature_name: str,
    checkpoint: str,
    options: ConversionOptions,
    generated_by: str,
    min_bytes: int,
    optimistic: bool = True,
    tf1: bool = False,
):
    """Load without the checkpoint, freeze with stand-ins for the large variables."""
    log.info("loading SavedModel %s without its variables (signature %s)", path, signature_name)
    source = checkpoint_source.CheckpointSource(checkpoint)
    try:
        model = _load_saved_model(path, tags, skip_checkpoint=True)
    except ConversionError as e:
        if not tf1:
            raise
        # A TF1 init op may read a variable: the checkpoint must be restored first.
        raise checkpoint_source.StreamingUnsupported(str(e)) from e
    func = _signature(model, signature_name, path)
    lazy = lazy_weights.LazyWeights(source, min_bytes, optimistic)
    keys = (
        checkpoint_source.variable_keys_v1(model, source)
        if tf1
        else checkpoint_source.variable_keys(model, source)
    )
    log.info("freezing variables (large ones stay in the checkpoint)")
    frozen = freeze_concrete_function(
        func,
        root=model,
        control_flow_v2=options.control_flow_v2,
        generated_by=generated_by,
        stand_ins=(keys, lazy),
    )
    del func, model
    gc.collect()
    return frozen, lazy


def saved_model_to_graph(input_path: str, staging_dir: str, options: ConversionOptions) -> None:
    """tf_saved_model -> tfjs_graph_model."""
    _convert_saved_model(input_path, staging_dir, options, "serving_default")


# --------------------------------------------------------------------- frozen graph


def frozen_to_graph(input_path: str, staging_dir: str, options: ConversionOptions) -> None:
    """tf_frozen_model (a binary GraphDef) -> tfjs_graph_model; outputs by node name."""
    tf = tf_env.import_tensorflow()
    graph_def = proto_readers.read_graph_def(input_path)
    # Grappler executes constant subgraphs: check the ops before it sees them.
    scan.scan_graph_def(graph_def, input_path, allow_unsafe=options.allow_unsafe_deserialization)
    names = [n.strip() for item in options.output_node_names for n in item.split(",") if n.strip()]
    node_names = {n.name for n in graph_def.node}
    missing = sorted(n.split(":")[0] for n in names if n.split(":")[0] not in node_names)
    if missing:
        raise ConversionError(
            f"--output_node_names not found in the graph {input_path}: {', '.join(missing)}"
        )
    signature = {"outputs": {n: {"name": n} for n in sorted(names)}}
    frozen = FrozenModel(
        graph_def=graph_def,
        signature=signature,
        output_nodes=names,
        generated_by=tf.__version__,
    )
    write_graph_model(frozen, staging_dir, options)


# ---------------------------------------------------------------------------- TF Hub


def _hub_cache_dir() -> str:
    """``TFHUB_CACHE_DIR``, else tensorflow_hub's default ``$TMPDIR/tfhub_modules``."""
    return os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")


def _resolve_hub_handle(handle: str) -> str:
    """A local module directory for ``handle`` (path, or URL found in the hub cache)."""
    if "://" not in handle:
        return handle
    if handle.startswith("file://"):
        return handle[len("file://") :]
    import hashlib

    cache = _hub_cache_dir()
    url = handle.split("?")[0].rstrip("/")
    # tensorflow_hub stores a module under sha1(handle) of the handle it was given.
    for variant in (handle, url, url + "?tf-hub-format=compressed"):
        path = os.path.join(cache, hashlib.sha1(variant.encode("utf8")).hexdigest())
        if os.path.isdir(path):
            return path
    raise ConversionError(
        f"TF Hub module {handle} is not in the local TF Hub cache ({cache}, set "
        "TFHUB_CACHE_DIR to change it) and cannot be downloaded offline; "
        "download it elsewhere and pass its directory"
    )


def hub_to_graph(input_path: str, staging_dir: str, options: ConversionOptions) -> None:
    """tf_hub (local dir, file:// or cached URL; TF2 SavedModel or TF1 Hub format) -> graph."""
    path = _resolve_hub_handle(input_path)
    if not os.path.isdir(path):
        raise ConversionError(f"TF Hub module directory does not exist: {path}")
    if os.path.isfile(os.path.join(path, "tfhub_module.pb")):
        # TF1 Hub format: a TF1 SavedModel whose inference graph has the empty tag set.
        tags = () if tuple(options.saved_model_tags) == ("serve",) else tuple(options.saved_model_tags)
        _convert_saved_model(path, staging_dir, options, "default", tags=tags, use_own_tf_version=True)
        return
    _convert_saved_model(path, staging_dir, options, "default")
