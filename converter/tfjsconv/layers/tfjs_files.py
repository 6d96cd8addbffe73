"""Layers ``model.json`` files as tfjs-layers itself and old converters wrote them.

tfjs-layers' ``model.save()`` (3.x and 4.x) stores the bare model config as
``modelTopology`` -- ``{class_name, config, keras_version: "tfjs-layers x", backend}`` --
where the Python converters wrap it: ``{keras_version, backend, model_config, ...}``.
tfjs loads both (``modelTopology.model_config ?? modelTopology``), so every reader here
first turns the bare form into the wrapped one; nothing else about such a file differs
(``./``-prefixed weight paths and an empty weights file are ordinary manifests).
"""

from __future__ import annotations

from typing import Any

_TOPOLOGY_KEYS = ("keras_version", "backend")


def is_bare_model_config(topology: Any) -> bool:
    """Whether ``topology`` is a model config itself (tfjs-layers' ``model.save()``)."""
    return (
        isinstance(topology, dict)
        and "model_config" not in topology
        and isinstance(topology.get("class_name"), str)
        and "config" in topology
    )


def wrapped_topology(topology: Any) -> Any:
    """``topology`` in the converters' ``{keras_version, backend, model_config}`` form
    (anything that is not a bare model config is returned unchanged)."""
    if not is_bare_model_config(topology):
        return topology
    out = {key: topology[key] for key in _TOPOLOGY_KEYS if key in topology}
    out["model_config"] = {k: v for k, v in topology.items() if k not in _TOPOLOGY_KEYS}
    return out
