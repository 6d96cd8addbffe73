"""A Keras 2 (tf_keras) h5 model whose weights stay in the h5 file until they are written.

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
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from tfjsconv.errors import ConversionError
from tfjsconv.graph.streaming import StreamingUnsupported


class H5Source:
    """One weight at a time from an open h5 file, by dataset path (``CheckpointSource``'s
    interface: ``prefix``, ``shapes``, ``read``)."""

    def __init__(self, path: str, h5file: Any):
        self.prefix = path
        self._file = h5file
        self.shapes: Dict[str, List[int]] = {}

    def read(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self._file[key][()])
        except (OSError, KeyError, ValueError) as e:
            raise ConversionError(f"cannot read weight {key} from {self.prefix}: {e}") from e


class _NotAsIs(Exception):
    """tf_keras wanted a weight's value (to transform it): this file cannot stream."""


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


def load_lazily(path: str, safe_mode: bool, h5file: Any) -> Tuple[Any, Dict[int, str], H5Source]:
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
    keys: Dict[int, str] = {}

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

    def refs(group: Any) -> List[_DatasetRef]:
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

    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(hdf5_format, "load_subset_weights_from_hdf5_group", refs))
            stack.enter_context(_patched(backend, "batch_set_value", record))
            stack.enter_context(tf.variable_creator_scope(creator))
            model = tf_keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    except _NotAsIs as e:
        raise StreamingUnsupported(f"tf_keras transforms the file's weights ({e})") from e
    except Exception as e:  # a model tf_keras cannot build this way: load it whole instead
        raise StreamingUnsupported(
            f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        ) from e
    if not keys:
        raise StreamingUnsupported("no weights were mapped to the file")
    return model, keys, source
