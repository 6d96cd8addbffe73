"""What tfjs-layers 4.22 cannot load in a layers model (``data/tfjs_layers_classes.json``).

A Keras model converts to the layers format whatever its classes, but
``tf.loadLayersModel`` then fails on a class the runtime does not register (Keras's
``Subtract``, say) and on ``GRU(reset_after=True)`` -- the Keras default -- which
tfjs-layers rejects.  The converter warns about both at conversion time instead of
leaving the user to find out in the browser.
"""

from __future__ import annotations

import functools
from typing import Any, FrozenSet, List

from tfjsconv import datafiles

# Config keys under which Keras nests other layers (wrappers, RNN cells, models).
_NESTED_ONE = ("layer", "cell", "forward_layer", "backward_layer")
_NESTED_MANY = ("layers", "cells")


@functools.lru_cache(maxsize=None)
def registered_classes() -> FrozenSet[str]:
    """Class names tfjs 4.22 can deserialize."""
    return frozenset(datafiles.load_json("tfjs_layers_classes.json")["classes"])


def unloadable_layers(model_config: Any) -> List[str]:
    """Sorted descriptions of the layers tfjs-layers 4.22 would refuse to load."""
    known = registered_classes()
    found = set()

    def visit(layer: Any) -> None:
        if not isinstance(layer, dict):
            return
        cls = layer.get("class_name")
        config = layer.get("config")
        if isinstance(config, list):  # old Sequential configs: a bare list of layers
            for sub in config:
                visit(sub)
            config = {}
        config = config if isinstance(config, dict) else {}
        name = config.get("name") or layer.get("name") or "?"
        if isinstance(cls, str):
            if cls not in known:
                found.add(f"{cls} (layer '{name}')")
            elif cls in ("GRU", "GRUCell") and config.get("reset_after"):
                found.add(f"{cls} with reset_after=True (layer '{name}')")
        for key in _NESTED_ONE:
            visit(config.get(key))
        for key in _NESTED_MANY:
            subs = config.get(key)
            if isinstance(subs, list):
                for sub in subs:
                    visit(sub)

    visit(model_config)
    return sorted(found)


def warning_text(problems: List[str]) -> str:
    return (
        f"TensorFlow.js 4.22 cannot load this layers model: {'; '.join(problems)}. "
        "Convert it with --output_format=tfjs_graph_model instead (or register the classes in JavaScript)"
    )
