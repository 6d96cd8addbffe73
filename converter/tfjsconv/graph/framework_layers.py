"""Layers Keras and tf_keras define for their own applications, resolved by a fixed table.

``tf_keras.applications.ConvNeXt*`` saves ``LayerScale`` layers that tf_keras never
registers, so loading its own h5 file fails with ``Unknown layer: 'LayerScale'``
unless the caller passes the class as a custom object.  These classes are part of the
installed (trusted, hash-locked) framework, not of the model file, so the graph path
resolves them from this table: module and class names written here, never a name read
from the file.  A layer of the same name whose config is not the framework class's
(other keys) is refused instead of being silently computed by the framework's code.
Any other unknown class is still refused by Keras, naming it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any, NamedTuple


class FrameworkLayer(NamedTuple):
    module: str
    name: str
    config_keys: frozenset[str]  # what the class's get_config adds to a Layer's


def _both(module: str, name: str, *keys: str) -> tuple[FrameworkLayer, FrameworkLayer]:
    """The class in tf_keras and in Keras 3 (same module path below ``src``)."""
    return (
        FrameworkLayer(f"tf_keras.src.{module}", name, frozenset(keys)),
        FrameworkLayer(f"keras.src.{module}", name, frozenset(keys)),
    )


FRAMEWORK_LAYERS: tuple[FrameworkLayer, ...] = (
    *_both("applications.convnext", "LayerScale", "init_values", "projection_dim"),
    *_both("applications.convnext", "StochasticDepth", "drop_path_rate"),
    *_both("applications.inception_resnet_v2", "CustomScaleLayer", "scale"),
)
# Keys every Layer's config may hold (tf_keras and Keras 3).
_LAYER_KEYS = frozenset({"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "dtype_policy"})


def _guarded(cls: Any, entry: FrameworkLayer) -> type:
    """``cls`` whose ``from_config`` first checks the config is the framework class's."""

    def from_config(_klass: type, config: dict[str, Any]) -> Any:
        keys = set(config)
        unknown = sorted(keys - _LAYER_KEYS - entry.config_keys)
        missing = sorted(entry.config_keys - keys)
        if unknown or missing:
            raise ValueError(
                f"layer class {entry.name!r} is not {entry.module}.{entry.name} "
                f"(config keys: unexpected {unknown}, missing {missing})"
            )
        return cls.from_config(config)

    return type(entry.name, (cls,), {"from_config": classmethod(from_config), "__module__": __name__})


def custom_objects(package: str) -> dict[str, type]:
    """Class name -> (guarded) framework class for ``package`` ("tf_keras" or "keras");
    empty when the package is not installed."""
    objects: dict[str, type] = {}
    for entry in FRAMEWORK_LAYERS:
        if not entry.module.startswith(package + "."):
            continue
        try:
            module = importlib.import_module(entry.module)
        except ImportError:
            continue
        cls = getattr(module, entry.name, None)
        if isinstance(cls, type):
            objects[entry.name] = _guarded(cls, entry)
    return objects


@contextlib.contextmanager
def framework_layer_scope() -> Iterator[None]:
    """Keras's and tf_keras's custom-object scopes holding ``FRAMEWORK_LAYERS``."""
    with contextlib.ExitStack() as stack:
        try:
            import tf_keras

            stack.enter_context(tf_keras.utils.custom_object_scope(custom_objects("tf_keras")))
        except ImportError:
            pass
        try:
            import keras

            stack.enter_context(keras.saving.custom_object_scope(custom_objects("keras")))
        except ImportError:
            pass
        yield
