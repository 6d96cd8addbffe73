"""Entry points named by the dispatch table in ``tfjsconv.api`` (graph-model outputs).

Each ``fn(input_path, staging_dir, options)`` writes ``model.json`` and the weight
shards into ``staging_dir`` (a fresh empty directory; ``api.convert`` makes it atomic).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from tfjsconv import tf_env
from tfjsconv.errors import ConversionError
from tfjsconv.graph import executability, extract, optimize, scan, streaming, weight_stash
from tfjsconv.graph.freeze import FrozenModel, freeze_concrete_function
from tfjsconv.graph.topology import message_to_dict
from tfjsconv.options import ConversionOptions

log = logging.getLogger(__name__)


def _tf():
    """Import TensorFlow quietly and reproducibly (see ``tfjsconv.tf_env``)."""
    return tf_env.import_tensorflow()


# --------------------------------------------------------------------------- writing


def write_graph_model(
    frozen: FrozenModel,
    out_dir: str,
    options: ConversionOptions,
    lazy: Optional[streaming.LazyWeights] = None,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """Optimize, extract weights, write shards and model.json (single weight group).

    ``lazy``: stand-ins of weights still in the checkpoint; the writer reads each one
    when it writes it.  ``min_bytes``: the weight stash's threshold (tests lower it).
    """
    from tfjsconv import model_json, weights

    log.info("optimizing the graph (%d nodes)", len(frozen.graph_def.node))
    graph_def = optimize.optimize_graph(
        frozen.graph_def,
        frozen.output_nodes,
        skip_op_check=options.skip_op_check,
        strip_debug_ops=options.strip_debug_ops,
        experiments=options.experiments,
        extra_graphs=[frozen.initializer_graph_def] if frozen.initializer_graph_def is not None else [],
        lazy=lazy,
        stash_min_bytes=min_bytes,
    )
    frozen.graph_def = None
    init_graph = frozen.initializer_graph_def
    # Refuse here what tfjs would load and then fail to execute.
    executability.check_model(graph_def, frozen.signature, init_graph, frozen.initializer_signature)
    values = streaming.extract_weights(graph_def, init_graph, lazy, extract.extract_weights)
    if lazy is not None:
        log.info(
            "%d weights stay in the checkpoint until they are written", len(streaming.lazy_names(values))
        )
    log.info("writing %d weights and model.json (%d nodes)", len(values), len(graph_def.node))
    manifest = weights.write_weights(
        [values],
        out_dir,
        shard_size_bytes=options.weight_shard_size_bytes,
        quantization=options.quantization_specs or None,
    )
    del values
    if lazy is not None:
        lazy.verify()  # before model.json: a wrong optimistic answer means converting again
    model: Dict[str, Any] = {
        "format": "graph-model",
        "generatedBy": frozen.generated_by,
        "convertedBy": model_json.converted_by(),
        "signature": frozen.signature,
        "modelTopology": message_to_dict(graph_def),
    }
    metadata = dict(options.metadata)
    if options.use_structured_outputs_names and frozen.structured_output_keys:
        metadata["structuredOutputKeys"] = list(frozen.structured_output_keys)
    if metadata:
        model["userDefinedMetadata"] = metadata
    if init_graph is not None and len(init_graph.node):
        model["modelInitializer"] = message_to_dict(init_graph)
        if frozen.initializer_signature:
            model["initializerSignature"] = frozen.initializer_signature
    model["weightsManifest"] = manifest
    model_json.write_model_json(out_dir, model)


# ----------------------------------------------------------------------- SavedModel


def _read_saved_model_proto(path: str):
    pb = os.path.join(path, "saved_model.pb")
    pbtxt = os.path.join(path, "saved_model.pbtxt")
    if not os.path.isdir(path) or not (os.path.isfile(pb) or os.path.isfile(pbtxt)):
        raise ConversionError(f"not a SavedModel directory (no saved_model.pb or saved_model.pbtxt): {path}")
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                proto.ParseFromString(f.read())
        else:
            from google.protobuf import text_format

            with open(pbtxt, "r", encoding="utf-8") as f:
                text_format.Parse(f.read(), proto)
    except Exception as e:
        raise ConversionError(
            f"corrupt SavedModel: cannot parse {os.path.basename(pb if os.path.isfile(pb) else pbtxt)} in {path} ({type(e).__name__})"
        ) from e
    if not proto.meta_graphs:
        raise ConversionError(f"corrupt SavedModel: {path} holds no MetaGraph")
    return proto


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
    tags: Optional[Sequence[str]] = None,
    use_own_tf_version: bool = False,
    streaming_enabled: bool = True,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """SavedModel -> graph model.  Large variables stream from the checkpoint unless
    ``streaming_enabled`` is False or the model cannot (TF1 ref variables): then all
    are loaded.  ``min_bytes``: what counts as large (and the weight stash's threshold)."""
    _tf()
    proto = _read_saved_model_proto(path)
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
    checkpoint = streaming.saved_model_checkpoint(path) if streaming_enabled else None
    del proto, meta
    tf = _tf()
    if use_own_tf_version:
        generated_by = tf.__version__
    generated_by = generated_by or tf.__version__
    if checkpoint is not None:

        def attempt(optimistic: bool):
            return _freeze_streaming(
                path, tags, signature_name, checkpoint, options, generated_by, min_bytes, optimistic, tf1
            )

        if _write_streamed(attempt, out_dir, options, min_bytes):
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
    tf = _tf()
    load_options = tf.saved_model.LoadOptions(experimental_skip_checkpoint=skip_checkpoint)
    try:
        return tf.saved_model.load(path, tags=list(tags), options=load_options)
    except Exception as e:
        raise ConversionError(f"cannot load SavedModel {path}: {type(e).__name__}: {_first_line(e)}") from e


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
    source = streaming.CheckpointSource(checkpoint)
    try:
        model = _load_saved_model(path, tags, skip_checkpoint=True)
    except ConversionError as e:
        if not tf1:
            raise
        # A TF1 init op may read a variable: the checkpoint must be restored first.
        raise streaming.StreamingUnsupported(str(e)) from e
    func = _signature(model, signature_name, path)
    lazy = streaming.LazyWeights(source, min_bytes, optimistic)
    keys = streaming.variable_keys_v1(model, source) if tf1 else streaming.variable_keys(model, source)
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


def _write_streamed(
    attempt: Callable[[bool], Tuple[FrozenModel, streaming.LazyWeights]],
    out_dir: str,
    options: ConversionOptions,
    min_bytes: int,
) -> bool:
    """Freeze (``attempt(optimistic)``) and write with weights streamed; False when the
    model cannot stream (the caller loads it whole).  A wrong optimistic answer about a
    weight's values (``StreamingRetry``) converts again with values read first."""
    for optimistic in (True, False):
        try:
            frozen, lazy = attempt(optimistic)
        except streaming.StreamingUnsupported as e:
            log.info("streaming the weights is not possible (%s): loading them all", e)
            return False
        try:
            write_graph_model(frozen, out_dir, options, lazy, min_bytes)
            return True
        except streaming.StreamingRetry as e:
            log.info("%s: converting again, reading the large weights' values first", e)
            _empty(out_dir)
            del frozen, lazy
            gc.collect()
    return False


def _empty(out_dir: str) -> None:
    """Remove what a conversion attempt wrote into its (private, staging) output dir."""
    for entry in os.listdir(out_dir):
        target = os.path.join(out_dir, entry)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.remove(target)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def saved_model_to_graph(input_path: str, staging_dir: str, options: ConversionOptions) -> None:
    """tf_saved_model -> tfjs_graph_model."""
    _convert_saved_model(input_path, staging_dir, options, "serving_default")


# --------------------------------------------------------------------- frozen graph


def frozen_to_graph(input_path: str, staging_dir: str, options: ConversionOptions) -> None:
    """tf_frozen_model (a binary GraphDef) -> tfjs_graph_model; outputs by node name."""
    tf = _tf()
    graph_def = scan.read_graph_def(input_path)
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


# ---------------------------------------------------------------------------- Keras


def _load_keras(path: str, options: ConversionOptions):
    """Keras 2 (tf_keras) h5, or Keras 3 ``.keras`` / Keras-3 h5, loaded in-process."""
    _tf()  # TensorFlow first, quiet and configured: Keras imports it
    safe = not options.allow_unsafe_deserialization
    errors = []
    if path.endswith(".keras"):
        import keras

        try:
            return keras.saving.load_model(path, compile=False, safe_mode=safe)
        except Exception as e:
            raise ConversionError(
                f"cannot load Keras model {path}: {type(e).__name__}: {_first_line(e)}"
            ) from e
    try:
        import tf_keras

        return tf_keras.models.load_model(path, compile=False, safe_mode=safe)
    except ImportError:
        errors.append("tf_keras is not installed")
    except Exception as e:
        errors.append(f"tf_keras: {type(e).__name__}: {_first_line(e)}")
    try:
        import keras

        return keras.saving.load_model(path, compile=False, safe_mode=safe)
    except Exception as e:
        errors.append(f"keras 3: {type(e).__name__}: {_first_line(e)}")
    raise ConversionError(f"cannot load Keras model {path} ({'; '.join(errors)})")


def _keras_concrete_function(model):
    """Trace ``model`` for its declared inputs (no SavedModel round trip)."""
    tf = _tf()
    inputs = model.inputs
    if not inputs:
        raise ConversionError("the Keras model has no defined inputs (build it with an input shape)")
    specs = []
    for i, tensor in enumerate(inputs):
        name = getattr(tensor, "name", None) or f"input_{i}"
        name = name.split(":")[0]
        specs.append(tf.TensorSpec(tuple(tensor.shape), tf.as_dtype(tensor.dtype), name=name))
    output_names = _unique_names(list(getattr(model, "output_names", None) or []))

    def call(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        flat = tf.nest.flatten(result)
        names = output_names if len(output_names) == len(flat) else [f"output_{i}" for i in range(len(flat))]
        return {name: tf.identity(t) for name, t in zip(names, flat)}

    return tf.function(call, input_signature=specs, autograph=False).get_concrete_function()


def _unique_names(names: List[str]) -> List[str]:
    """Keras 3 names every output of a multi-output layer after the layer (an RNN with
    ``return_state``): keep the first, suffix the others (``name_1``...), or the
    signature's dict would keep only the last of them."""
    taken: Set[str] = set(names)
    seen: Set[str] = set()
    result = []
    for name in names:
        new, n = name, 0
        while new in seen or (n and new in taken):
            n += 1
            new = f"{name}_{n}"
        seen.add(new)
        result.append(new)
    return result


def _convert_keras_model(
    model, out_dir: str, options: ConversionOptions, min_bytes: int = weight_stash.DEFAULT_MIN_BYTES
) -> None:
    tf = _tf()
    func = _keras_concrete_function(model)
    log.info("freezing variables")
    frozen = freeze_concrete_function(
        func, root=model, control_flow_v2=options.control_flow_v2, generated_by=tf.__version__
    )
    del func
    gc.collect()
    write_graph_model(frozen, out_dir, options, min_bytes=min_bytes)


def keras_to_graph(
    input_path: str,
    staging_dir: str,
    options: ConversionOptions,
    streaming_enabled: bool = True,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """keras (h5) / keras_keras (.keras) -> tfjs_graph_model, traced in-process.

    A tf_keras h5 or Keras 3 ``.keras`` file streams its weights (``keras_streaming``)
    when it can;
    ``streaming_enabled``/``min_bytes`` exist for tests comparing both ways."""
    from tfjsconv.layers.keras_files import check_keras_file

    check_keras_file(input_path)  # size/zip-bomb checks before Keras reads anything
    if streaming_enabled and _stream_keras(input_path, staging_dir, options, min_bytes):
        return
    model = _load_keras(input_path, options)
    _convert_keras_model(model, staging_dir, options, min_bytes)


def _stream_keras(path: str, out_dir: str, options: ConversionOptions, min_bytes: int) -> bool:
    """tf_keras h5 or Keras 3 ``.keras`` -> graph model with large weights read from the
    file when written; False when the model must be loaded whole."""
    import h5py

    from tfjsconv.graph import keras_streaming

    tf = _tf()
    keras3 = path.endswith(".keras")
    try:
        h5file = keras_streaming.open_keras3_weights(path) if keras3 else h5py.File(path, "r")
    except streaming.StreamingUnsupported as e:
        log.info("streaming the weights is not possible (%s): loading them all", e)
        return False
    except OSError:
        return False  # not an h5 file h5py opens: the full load reports why
    with h5file:
        if not keras3 and "model_config" not in h5file.attrs:
            return False
        load = keras_streaming.load_keras3_lazily if keras3 else keras_streaming.load_h5_lazily

        def attempt(optimistic: bool):
            log.info("loading Keras model %s without its weights", path)
            model, keys, source = load(path, not options.allow_unsafe_deserialization, h5file)
            lazy = streaming.LazyWeights(source, min_bytes, optimistic)
            try:
                func = _keras_concrete_function(model)
            except ConversionError:
                raise
            except Exception as e:  # e.g. a layer reading a variable's value while tracing
                raise streaming.StreamingUnsupported(f"tracing: {type(e).__name__}") from e
            log.info("freezing variables (large ones stay in the h5 file)")
            frozen = freeze_concrete_function(
                func,
                root=model,
                control_flow_v2=options.control_flow_v2,
                generated_by=tf.__version__,
                stand_ins=(keys, lazy),
            )
            del func, model
            gc.collect()
            return frozen, lazy

        return _write_streamed(attempt, out_dir, options, min_bytes)


def layers_to_graph(
    input_path: str,
    staging_dir: str,
    options: ConversionOptions,
    streaming_enabled: bool = True,
    min_bytes: int = weight_stash.DEFAULT_MIN_BYTES,
) -> None:
    """tfjs_layers_model -> Keras h5 (tfjs.layers) -> tfjs_graph_model; the h5 (written
    one weight at a time) streams its weights like ``keras_to_graph``."""
    from tfjsconv.layers import convert as layers_convert

    with tempfile.TemporaryDirectory(prefix="tfjsconv-") as tmp:
        h5 = os.path.join(tmp, "model.h5")
        layers_convert.layers_to_keras_h5(
            input_path,
            h5,
            options.replace(
                output_format="keras", quantize_float16=None, quantize_uint8=None, quantize_uint16=None
            ),
        )
        keras_to_graph(h5, staging_dir, options, streaming_enabled, min_bytes)
