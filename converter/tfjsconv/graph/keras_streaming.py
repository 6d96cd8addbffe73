"""Keras models whose weights stay in their file until they are written.

A Keras 2 (tf_keras) h5 file:

``tf_keras.models.load_model`` builds every variable with its initializer's values and
then assigns the file's: two full copies of the weights before freezing starts. Here
the model is built the same way, but

- every variable of a known shape is created *uninitialized* (no memory for its value),
  through a ``tf.variable_creator_scope``;
- tf_keras's own h5 loader runs (it decides which dataset goes to which variable), but
  each dataset it would read is handed over as a value-less ``_DatasetRef``, and the
  final assignment only records variable -> dataset path.

If tf_keras would transform a value on the way (Keras 1 files, cuDNN RNN weights, a
dtype cast) the ``_DatasetRef`` refuses to become an array and the caller loads the
model whole instead (``StreamingUnsupported``): a streamed model is always one whose
file values go to its variables unchanged. Freezing then reads small variables from the
file and leaves large ones as stand-ins (``graph.streaming``), exactly as for a
SavedModel's checkpoint.

A Keras 3 ``.keras`` file (``load_keras3_lazily``): the same idea through Keras 3's own
config deserializer and state loader, reading ``model.weights.h5`` in place inside the
zip (Keras stores members uncompressed).  A Keras 3 h5 file (``load_keras3_h5_lazily``)
through Keras 3's legacy h5 loader, when tf_keras cannot build it (``load_h5_lazily``,
the full load's order).
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.graph.checkpoint_source import StreamingUnsupported
from tfjsconv.layers.keras3 import is_keras3_version
from tfjsconv.layers.keras_zip import KERAS3_WEIGHTS


class H5Source:
    """One weight at a time from an open h5 file, by dataset path (``CheckpointSource``'s
    interface: ``prefix``, ``shapes``, ``read``)."""

    def __init__(self, path: str, h5file: Any):
        self.prefix = path
        self._file = h5file
        self.shapes: dict[str, list[int]] = {}

    def read(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self._file[key][()])
        except (OSError, KeyError, ValueError) as e:
            raise ConversionError(f"cannot read weight {key} from {self.prefix}: {e}") from e


class _NotAsIs(Exception):
    """Keras wanted a weight's value (to transform it): this file cannot stream."""


class WouldTransform(StreamingUnsupported):
    """The loader transforms the file's values on the way: load the model whole."""


class _DatasetRef:
    """What the patched loader returns for a dataset: its path, shape and dtype only."""

    __slots__ = ("path", "shape", "dtype")

    def __init__(self, dataset: Any):
        self.path = dataset.name
        self.shape = tuple(int(d) for d in dataset.shape)
        self.dtype = np.dtype(dataset.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise _NotAsIs(self.path)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a scalar weight")
        return self.shape[0]


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    """``module.name = value`` for the duration (the process runs one conversion at a time)."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def load_lazily(path: str, safe_mode: bool, h5file: Any) -> tuple[Any, dict[int, str], H5Source]:
    """The tf_keras model of ``path`` with uninitialized variables, ``id(variable)`` ->
    dataset path, and the source to read them from.  Raises ``StreamingUnsupported``
    when the file cannot stream (the caller then loads it whole)."""
    import tensorflow as tf
    from tensorflow.python.ops.resource_variable_ops import UninitializedVariable

    try:
        import tf_keras
        from tf_keras.src import backend
        from tf_keras.src.saving.legacy import hdf5_format
    except ImportError as e:
        raise StreamingUnsupported(f"tf_keras's h5 loader is not available ({e})") from e

    source = H5Source(path, h5file)
    keys: dict[int, str] = {}

    def creator(next_creator: Any, **kwargs: Any) -> Any:
        shape, dtype = kwargs.get("shape"), kwargs.get("dtype")
        if shape is None or dtype is None or not tf.TensorShape(shape).is_fully_defined():
            return next_creator(**kwargs)  # e.g. the model's int64 counters: tiny, real values
        return UninitializedVariable(
            shape=shape,
            dtype=dtype,
            name=kwargs.get("name"),
            trainable=kwargs.get("trainable", True),
        )

    def refs(group: Any) -> list[_DatasetRef]:
        names = hdf5_format.load_attributes_from_hdf5_group(group, "weight_names")
        return [_DatasetRef(group[name]) for name in names]

    def record(pairs: Any) -> None:
        for variable, ref in pairs:
            if not isinstance(ref, _DatasetRef):
                raise _NotAsIs("a transformed value")
            if tuple(variable.shape) != ref.shape or np.dtype(variable.dtype.as_numpy_dtype) != ref.dtype:
                raise _NotAsIs(f"{ref.path} is {ref.dtype} {list(ref.shape)}, its variable differs")
            keys[id(variable)] = ref.path
            source.shapes[ref.path] = list(ref.shape)

    with _lazy_load("tf_keras"), contextlib.ExitStack() as stack:
        stack.enter_context(_patched(hdf5_format, "load_subset_weights_from_hdf5_group", refs))
        stack.enter_context(_patched(backend, "batch_set_value", record))
        stack.enter_context(tf.variable_creator_scope(creator))
        model = tf_keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    return _mapped(model, keys, source)


@contextlib.contextmanager
def _lazy_load(loader: str) -> Iterator[None]:
    """Any failure of ``loader`` building the model lazily means: load it whole instead."""
    try:
        yield
    except _NotAsIs as e:
        raise WouldTransform(f"{loader} transforms the file's weights ({e})") from e
    except Exception as e:  # a model it cannot build this way
        raise StreamingUnsupported(
            f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        ) from e


def _mapped(model: Any, keys: dict[int, str], source: H5Source) -> tuple[Any, dict[int, str], H5Source]:
    if not keys:
        raise StreamingUnsupported("no weights were mapped to the file")
    return model, keys, source


# -- Keras 3 ``.keras`` files


def open_keras3_weights(path: str) -> Any:
    """``model.weights.h5`` of a ``.keras`` zip, opened in place (h5py over a
    ``ZipMemberWindow``); ``StreamingUnsupported`` if it is compressed or missing."""
    import h5py

    from tfjsconv.layers.keras_zip import stored_member

    try:
        window = stored_member(path, KERAS3_WEIGHTS)
        if window is None:
            raise StreamingUnsupported(f"{KERAS3_WEIGHTS} is compressed in the archive")
        return h5py.File(window, "r")
    except (KeyError, OSError, zipfile.BadZipFile, ConversionError) as e:
        raise StreamingUnsupported(f"{KERAS3_WEIGHTS}: {type(e).__name__}") from e


class _Keras3Variables:
    """Keras 3 (TensorFlow backend) variables created uninitialized, and ``assign`` of a
    ``_DatasetRef`` recorded as ``id(tf.Variable)`` -> dataset path instead of read."""

    def __init__(self, source: H5Source):
        try:
            from keras.src.backend.tensorflow import core as tf_backend
        except ImportError as e:
            raise StreamingUnsupported(f"Keras 3's TensorFlow variables are not available ({e})") from e

        self.variable_class = tf_backend.Variable
        self.source = source
        self.keys: dict[int, str] = {}

    def uninitialized(self) -> Any:
        from tensorflow.python.ops.resource_variable_ops import UninitializedVariable

        def create(variable: Any, initializer: Any) -> None:
            variable._initialize(
                UninitializedVariable(
                    shape=variable._shape,
                    dtype=variable._dtype,
                    name=variable.name,
                    trainable=variable.trainable,
                )
            )

        return _patched(self.variable_class, "_initialize_with_initializer", create)

    def recording(self) -> Any:
        def record(variable: Any, value: Any) -> Any:
            if not isinstance(value, _DatasetRef):
                raise _NotAsIs("a computed value")
            if tuple(variable.shape) != value.shape or np.dtype(variable.dtype) != value.dtype:
                raise _NotAsIs(f"{value.path} is {value.dtype} {list(value.shape)}, its variable differs")
            self.keys[id(variable.value)] = value.path
            self.source.shapes[value.path] = list(value.shape)
            return value

        return _patched(self.variable_class, "assign", record)


def load_keras3_lazily(path: str, safe_mode: bool, h5file: Any) -> tuple[Any, dict[int, str], H5Source]:
    """The Keras 3 model of the ``.keras`` file ``path`` with uninitialized variables,
    ``id(tf.Variable)`` -> dataset path in ``h5file`` (its weights), and the source.

    Keras builds the model from ``config.json`` with each variable's initializer never
    run (an uninitialized ``tf.Variable`` instead), then Keras's own state loader walks
    the model and its ``load_own_variables`` hands each variable a value-less dataset
    reference, which the patched ``assign`` records.  A layer that wants a value (to
    transform it, or an asset) makes the model load whole (``StreamingUnsupported``)."""
    try:
        from keras.src.saving import saving_lib
    except ImportError as e:
        raise StreamingUnsupported(f"Keras 3's loader is not available ({e})") from e
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) > 3 or "config.json" not in names:
            raise StreamingUnsupported("the archive has assets or no config.json")
        config_json = archive.read("config.json")
    variables = _Keras3Variables(H5Source(path + "/" + KERAS3_WEIGHTS, h5file))

    class _LazyStore(saving_lib.H5IOStore):
        """Keras's h5 store over ``h5file``, handing out dataset references."""

        def _get_h5_file(self, path_or_io: Any, mode: Any = None) -> Any:
            return h5file

        def __getitem__(self, key: str) -> Any:
            dataset = self._h5_entry_group[key]
            if "dtype" in dataset.attrs:  # bfloat16 stored as raw bytes: a conversion
                raise _NotAsIs(dataset.name)
            return _DatasetRef(dataset)

        def close(self) -> None:
            pass  # the caller owns h5file

    with _lazy_load("Keras"), contextlib.ExitStack() as stack:
        stack.enter_context(variables.uninitialized())
        model = saving_lib._model_from_config(config_json, None, False, safe_mode)
        stack.enter_context(variables.recording())
        saving_lib._load_state(
            model,
            weights_store=_LazyStore(KERAS3_WEIGHTS, mode="r"),
            assets_store=None,
            inner_path="",
            visited_saveables=set(),
        )
    return _mapped(model, variables.keys, variables.source)


def load_keras3_h5_lazily(path: str, safe_mode: bool, h5file: Any) -> tuple[Any, dict[int, str], H5Source]:
    """``load_keras3_lazily`` for a Keras 3 legacy h5 file (``model.save("x.h5")``):
    Keras 3's legacy h5 loader maps layers to weight groups; each group it would read
    is handed over as ``_DatasetRef``s."""
    try:
        import keras
        from keras.src.legacy.saving import legacy_h5_format
    except ImportError as e:
        raise StreamingUnsupported(f"Keras 3's h5 loader is not available ({e})") from e
    variables = _Keras3Variables(H5Source(path, h5file))

    def refs(group: Any) -> list[_DatasetRef]:
        names = legacy_h5_format.load_attributes_from_hdf5_group(group, "weight_names")
        return [_DatasetRef(group[name]) for name in names]

    with _lazy_load("Keras"), contextlib.ExitStack() as stack:
        stack.enter_context(variables.uninitialized())
        stack.enter_context(variables.recording())
        stack.enter_context(_patched(legacy_h5_format, "load_subset_weights_from_hdf5_group", refs))
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    return _mapped(model, variables.keys, variables.source)


def load_h5_lazily(path: str, safe_mode: bool, h5file: Any) -> tuple[Any, dict[int, str], H5Source]:
    """A Keras h5 file the way the full load reads it: tf_keras first, then (a Keras 3
    file tf_keras cannot build) Keras 3."""
    try:
        return load_lazily(path, safe_mode, h5file)
    except WouldTransform:
        raise  # tf_keras builds it (the full load does too), reading values on the way
    except StreamingUnsupported:
        version = h5file.attrs.get("keras_version", b"")
        if not is_keras3_version(
            version.decode("utf-8", "replace") if isinstance(version, bytes) else version
        ):
            raise
        return load_keras3_h5_lazily(path, safe_mode, h5file)
