"""This checkout, for tests: its scripts as modules, and copies of it for tests that run
Bazel in a workspace of their own."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]

# Local state that is not part of the source tree: caches, venvs, Bazel's convenience
# links, build and test outputs.
IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".cache",
    "node_modules",
    "bazel-*",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "out",
    "test-artifacts",
    "user.bazelrc",
    "*.pyc",
)


def copy_checkout(dst: Path, src: Path = REPO) -> Path:
    """Copy the source tree ``src`` (this checkout; symlinks kept) to ``dst``; return ``dst``."""
    shutil.copytree(src, dst, ignore=IGNORE, symlinks=True)
    # The one piece of local state a copy shares: the Bazel server's class-data archive
    # (tools/bazel_jvm_archive.sh), which only makes its servers start sooner.
    jvm = Path(".cache", "bazel-jvm", "startup.bazelrc")
    if (src / jvm).is_file():
        (dst / jvm).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / jvm, dst / jvm)
    return dst


def load_script(relpath: str) -> ModuleType:
    """The script at ``relpath`` in this checkout (``tools/reach_table.py``), imported as a
    module: the tools are scripts, not a package on the path."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
