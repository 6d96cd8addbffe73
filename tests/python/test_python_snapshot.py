"""rules/private/python_snapshot.py: the stdlib zip the hermetic interpreter imports from.

The zip's pycs only help if zipimport finds them: it looks for ``name.pyc`` beside
``name.py`` (never in ``__pycache__/``), and a module loaded from its pyc reports the
``.pyc`` as ``__file__``. So these tests import from a zip written by the tool, in a
fresh interpreter of the same version as the one that compiled it, and read
``__file__``: a pyc the importer cannot see would show ``.py`` and fail them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "rules" / "private"))
import python_snapshot  # noqa: E402


def stdlib(root: Path) -> Path:
    lib = root / "python3.11"
    (lib / "pkg").mkdir(parents=True)
    (lib / "plain.py").write_text("VALUE = 41 + 1\n")
    (lib / "pkg" / "__init__.py").write_text("from . import sub\n")
    (lib / "pkg" / "sub.py").write_text("def f():\n    return 'sub'\n")
    # Syntax of another Python version: kept as source, never compiled.
    (lib / "future_syntax.py").write_text("match = (\n")
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"not a pyc")
    return lib


def imported_files(zip_path: Path, *modules: str) -> list[str]:
    code = (
        "import sys, importlib\n"
        f"sys.path.insert(0, {str(zip_path)!r})\n"
        f"for name in {list(modules)!r}:\n"
        "    print(importlib.import_module(name).__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True, text=True, check=True
    )
    return [line.rsplit("/", 1)[-1] for line in out.stdout.splitlines()]


def test_zipimport_loads_the_compiled_modules(tmp_path: Path) -> None:
    zip_path = tmp_path / "python311.zip"
    python_snapshot.write_stdlib_zip(stdlib(tmp_path), zip_path)
    assert imported_files(zip_path, "plain", "pkg", "pkg.sub") == ["plain.pyc", "__init__.pyc", "sub.pyc"]


def test_zip_layout_sources_beside_pycs(tmp_path: Path) -> None:
    zip_path = tmp_path / "python311.zip"
    python_snapshot.write_stdlib_zip(stdlib(tmp_path), zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert names == [
        "future_syntax.py",
        "pkg/__init__.py",
        "pkg/__init__.pyc",
        "pkg/sub.py",
        "pkg/sub.pyc",
        "plain.py",
        "plain.pyc",
    ]


def test_zip_is_byte_identical_across_runs(tmp_path: Path) -> None:
    lib = stdlib(tmp_path)
    digests = []
    for name in ("a.zip", "b.zip"):
        python_snapshot.write_stdlib_zip(lib, tmp_path / name)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
