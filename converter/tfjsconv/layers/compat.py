"""The layer classes tfjs-layers 4.22 registers (``data/tfjs_layers_classes.json``).

``tf.loadLayersModel`` fails on any other class (Keras's ``Subtract``, say);
``tfjsconv.layers.check`` uses this list to refuse such models at conversion time.
"""

from __future__ import annotations

import functools

from tfjsconv import datafiles


@functools.cache
def registered_classes() -> frozenset[str]:
    """Class names tfjs 4.22 can deserialize."""
    return frozenset(datafiles.load_json("tfjs_layers_classes.json")["classes"])


@functools.cache
def registered_activations() -> frozenset[str]:
    """Activation names tfjs 4.22 can deserialize (its registered classes are lowerCamelCase)."""
    return frozenset(c for c in registered_classes() if c[:1].islower())
