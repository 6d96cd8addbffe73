"""The one deterministic serializer for ``model.json``, and the loaders for existing models.

Serialization choice: compact separators (``","``/``":"``), ``ensure_ascii=True``, keys in
the order the caller built them (no sorting), no trailing newline, NaN/Infinity refused.
The reference uses ``json.dump`` defaults (``", "``/``": "``); tfjs only needs valid JSON,
so we drop the spaces (smaller files) and keep everything else stable. Floats print with
Python's shortest round-trip ``repr``, which is identical on every platform. Caller-chosen
key order (not ``sort_keys``) keeps the reference's familiar layout (``format`` first,
``weightsManifest`` last) while still being reproducible, since callers build dicts in a
fixed order.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

import tfjsconv
from tfjsconv.errors import ConversionError
from tfjsconv.formats import MODEL_JSON

__all__ = ["MODEL_JSON", "converted_by", "dumps", "load_model_json", "load_tfjs_model", "write_model_json"]


def converted_by() -> str:
    """``convertedBy`` of every model.json tfjsconv writes (layers, graph, migrated)."""
    return f"TensorFlow.js Converter v{tfjsconv.COMPATIBLE_TFJS_VERSION} (tfjsconv {tfjsconv.__version__})"


def _numpy_default(value: Any) -> Any:
    """Let callers pass NumPy scalars/arrays (e.g. shapes, attr values) without converting."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Serialize ``obj`` to the exact model.json bytes (UTF-8, pure ASCII)."""
    try:
        text = json.dumps(
            obj,
            ensure_ascii=True,
            allow_nan=False,
            separators=(",", ":"),
            default=_numpy_default,
        )
    except ValueError as e:
        raise ConversionError(
            f"model.json cannot contain NaN or Infinity (check --metadata and weights): {e}"
        ) from None
    return text.encode("ascii")


def write_model_json(out_dir: str, obj: Any) -> str:
    """Write ``out_dir/model.json``; return its path."""
    path = os.path.join(out_dir, MODEL_JSON)
    data = dumps(obj)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_model_json(path: str, *, require_weights_manifest: bool = False) -> dict[str, Any]:
    """Load a model.json (``path`` may be the file or the directory holding it)."""
    if os.path.isdir(path):
        candidate = os.path.join(path, MODEL_JSON)
        if not os.path.isfile(candidate):
            raise ConversionError(f"directory {path} has no {MODEL_JSON}")
        path = candidate
    elif not os.path.exists(path):
        raise ConversionError(f"model.json not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConversionError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        obj = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConversionError(f"{path} is not valid JSON: {reason}") from None
    if not isinstance(obj, dict):
        raise ConversionError(f"{path} is not a JSON object (got {type(obj).__name__})")
    if require_weights_manifest:
        if "weightsManifest" not in obj:
            raise ConversionError(f"{path} has no weightsManifest")
        if not isinstance(obj["weightsManifest"], list):
            raise ConversionError(f"{path}: weightsManifest is not a list")
    return obj


def load_tfjs_model(
    model_dir_or_json: str, lazy: bool = False, follow_symlinks: bool = False
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Load a converted model: (model.json object, dequantized weights in manifest order).

    ``lazy``: weights are ``weight_reader.ShardWeight``s, read when written (re-sharding).
    ``follow_symlinks``: see ``weight_reader.read_weights``.
    """
    from tfjsconv.weight_reader import read_weights, read_weights_lazily

    path = model_dir_or_json
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_JSON)
        if not os.path.isfile(path):
            raise ConversionError(f"directory {model_dir_or_json} has no {MODEL_JSON}")
    model = load_model_json(path, require_weights_manifest=True)
    reader = read_weights_lazily if lazy else read_weights
    weights = reader(model["weightsManifest"], os.path.dirname(os.path.abspath(path)), follow_symlinks)
    return model, weights
