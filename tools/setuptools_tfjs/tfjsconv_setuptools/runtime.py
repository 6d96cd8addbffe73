"""Find converted models shipped inside an installed package (no setuptools needed)."""

from __future__ import annotations

import importlib.resources

MODELS_DIR = "tfjs_models"


def model_path(package: str, name: str) -> str:
    """Filesystem path of the model ``name`` that the build put into ``package``.

    The directory holds ``model.json`` and its shards (or the Keras file for keras
    outputs). Raises FileNotFoundError if the package does not ship that model.
    """
    path = importlib.resources.files(package) / MODELS_DIR / name
    if not path.is_dir():
        raise FileNotFoundError(f"package {package!r} ships no tfjs model named {name!r} (looked in {path})")
    return str(path)
