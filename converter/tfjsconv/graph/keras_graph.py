"""keras / keras_keras -> tfjs_graph_model: load the Keras model (or stream its h5
weights), trace its call as a concrete function, freeze and write it."""

from __future__ import annotations

import gc
import logging
import re
from typing import Any

from tfjsconv import tf_env
from tfjsconv.errors import ConversionError, first_line
from tfjsconv.graph import (
    checkpoint_source,
    lazy_weights,
    weight_stash,
)
from tfjsconv.graph.framework_layers import framework_layer_scope
from tfjsconv.graph.freeze import freeze_concrete_function
from tfjsconv.graph.writer import write_graph_model, write_streamed
from tfjsconv.options import ConversionOptions

log = logging.getLogger(__name__)


def load_keras(path: str, options: ConversionOptions):
    """Keras 2 (tf_keras) h5, or Keras 3 ``.keras`` / Keras-3 h5, loaded in-process."""
    tf_env.import_tensorflow()  # TensorFlow first, quiet and configured: Keras imports it
    safe = not options.allow_unsafe_deserialization
    errors = []
    if path.endswith(".keras"):
        import keras

        try:
            return keras.saving.load_model(path, compile=False, safe_mode=safe)
        except Exception as e:
            raise ConversionError(f"cannot load Keras model {path}: {_load_reason(e)}") from e
    try:
        import tf_keras

        return tf_keras.models.load_model(path, compile=False, safe_mode=safe)
    except ImportError:
        errors.append("tf_keras is not installed")
    except Exception as e:
        errors.append(f"tf_keras: {type(e).__name__}: {first_line(e)}")
    try:
        import keras

        return keras.saving.load_model(path, compile=False, safe_mode=safe)
    except Exception as e:
        errors.append(f"keras 3: {type(e).__name__}: {first_line(e)}")
    raise ConversionError(f"cannot load Keras model {path} ({'; '.join(errors)})")


# Keras 3 imports a class's module only inside its own ecosystem (keras, keras_hub,
# keras_cv, keras_nlp); a missing one ends in this message, followed by the whole config.
_MISSING_MODULE = re.compile(
    r"Could not deserialize class '(?P<cls>[\w.]+)' because its parent module (?P<module>[\w.]+) cannot be imported"
)

_UNKNOWN_CLASS = re.compile(r"Could not locate class '(?P<cls>[\w.]+)'")


def _load_reason(e: BaseException) -> str:
    """Why Keras could not load a file, in one line (a missing package named, not its config)."""
    missing = _MISSING_MODULE.search(str(e))
    if missing:
        package = missing["module"].split(".", 1)[0]
        return (
            f"class {missing['cls']!r} is defined in {missing['module']}, and the package "
            f"{package} is not installed where the converter runs (install the version that saved the model)"
        )
    unknown = _UNKNOWN_CLASS.search(str(e))
    if unknown:
        return (
            f"unknown class {unknown['cls']!r}: not a Keras class, and the converter does not "
            "import code named by a model file"
        )
    return f"{type(e).__name__}: {first_line(e)}"


def _keras_concrete_function(model):
    """Trace ``model`` for its declared inputs (no SavedModel round trip)."""
    tf = tf_env.import_tensorflow()
    inputs = model.inputs
    if not inputs:
        raise ConversionError("the Keras model has no defined inputs (build it with an input shape)")
    specs = []
    for i, tensor in enumerate(inputs):
        name = getattr(tensor, "name", None) or f"input_{i}"
        name = name.split(":")[0]
        specs.append(tf.TensorSpec(tuple(tensor.shape), tf.as_dtype(tensor.dtype), name=name))
    output_names = _unique_names(list(getattr(model, "output_names", None) or []))
    keyed = _input_keys(model, inputs)

    def call(*args):
        x: Any
        if keyed:  # a model called with a dict of named inputs (KerasHub backbones)
            x = {key: args[i] for key, i in keyed.items()}
        else:
            x = list(args) if len(args) > 1 else args[0]
        result = model(x, training=False)
        flat = tf.nest.flatten(result)
        names = output_names if len(output_names) == len(flat) else [f"output_{i}" for i in range(len(flat))]
        return {name: tf.identity(t) for name, t in zip(names, flat, strict=False)}

    return tf.function(call, input_signature=specs, autograph=False).get_concrete_function()


def _input_keys(model, inputs: list) -> dict[str, int]:
    """Key -> index in ``model.inputs`` when the model takes a dict (its ``input`` is one),
    else empty: such a model refuses a list of its inputs."""
    try:
        structure = model.input
    except (AttributeError, ValueError):
        return {}
    if not isinstance(structure, dict):
        return {}
    keys: dict[str, int] = {}
    for key, tensor in structure.items():
        index = next((i for i, t in enumerate(inputs) if t is tensor), None)
        if index is None:
            return {}
        keys[str(key)] = index
    return keys


def _unique_names(names: list[str]) -> list[str]:
    """Keras 3 names every output of a multi-output layer after the layer (an RNN with
    ``return_state``): keep the first, suffix the others (``name_1``...), or the
    signature's dict would keep only the last of them."""
    taken: set[str] = set(names)
    seen: set[str] = set()
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
    tf = tf_env.import_tensorflow()
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
    # The framework's own application layers (``LayerScale``...) resolve from a fixed table.
    with framework_layer_scope():
        if streaming_enabled and _stream_keras(input_path, staging_dir, options, min_bytes):
            return
        model = load_keras(input_path, options)
    _convert_keras_model(model, staging_dir, options, min_bytes)


def _stream_keras(path: str, out_dir: str, options: ConversionOptions, min_bytes: int) -> bool:
    """tf_keras h5 or Keras 3 ``.keras`` -> graph model with large weights read from the
    file when written; False when the model must be loaded whole."""
    import h5py

    from tfjsconv.graph import keras_streaming

    tf = tf_env.import_tensorflow()
    keras3 = path.endswith(".keras")
    try:
        h5file = keras_streaming.open_keras3_weights(path) if keras3 else h5py.File(path, "r")
    except checkpoint_source.StreamingUnsupported as e:
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
            lazy = lazy_weights.LazyWeights(source, min_bytes, optimistic)
            try:
                func = _keras_concrete_function(model)
            except ConversionError:
                raise
            except Exception as e:  # e.g. a layer reading a variable's value while tracing
                raise checkpoint_source.StreamingUnsupported(f"tracing: {type(e).__name__}") from e
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

        return write_streamed(attempt, out_dir, options, min_bytes)
