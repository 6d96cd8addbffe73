"""The JSON data files shipped in ``tfjsconv/data`` (tfjs op and layer-class lists)."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")


def path(name: str) -> str:
    return os.path.join(DATA_DIR, name)


@functools.cache
def load_json(name: str) -> Any:
    """Parsed ``data/<name>``, read once per process; callers must not mutate it."""
    with open(path(name), "rb") as f:
        return json.loads(f.read().decode("utf-8"))
