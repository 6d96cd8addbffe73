"""Snapshot a CPython 3.11 interpreter into a self-contained directory.

Run by the ``tfjs_python_snapshot`` repository rule (never by a build action). The
result runs on any Linux x86_64 machine without a system Python or matching shared
libraries, which is what a remote executor gives us:

    lib/ld-linux-x86-64.so.2           the dynamic loader, run as the action's executable
    lib/*.so*                          every shared library the interpreter, its
                                       extension modules and the manylinux wheels need
    bin/python3.11                     the interpreter binary
    lib/python311.zip                  the pure-Python stdlib (one file: one CAS blob,
                                       one file to stage per action)
    lib/python3.11/lib-dynload/*.so    stdlib extension modules (cannot load from a zip)

``--loader`` also copies the dynamic loader outside that tree: actions take the tree as
one directory input, and their executable has to be a file of its own.

The zip holds ``unchecked-hash`` .pyc files beside the sources (``os.pyc`` next to
``os.py``, where zipimport looks for them), so two snapshots of the same interpreter are
byte-identical (fixed zip timestamps, sorted entries) and startup does not recompile the
stdlib.
"""

from __future__ import annotations

import argparse
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

# Parts of the stdlib a conversion never imports; dropping them keeps the snapshot small.
_SKIP_DIRS = {
    "__pycache__",
    "site-packages",
    "dist-packages",
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "venv",
}
_SKIP_PREFIXES = ("config-",)
# 1980-01-01: the earliest timestamp a zip entry can hold.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Libraries manylinux wheels may take from the system (PEP 599, without X11/GL); TF's
# and h5py's extension modules link against some of them.
MANYLINUX_LIBS = [
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
    "libexpat.so.1",
]


def ldd(paths: Iterable[Path]) -> dict[str, Path]:
    """soname -> resolved path of every library the given ELF files load (transitively)."""
    found: dict[str, Path] = {}
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
        for line in out.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)\s+\(0x", line)
            if m:
                found.setdefault(m.group(1), Path(m.group(2)))
                continue
            m = re.match(r"\s*(/\S*ld-linux\S*)\s+\(0x", line)
            if m:
                found.setdefault(os.path.basename(m.group(1)), Path(m.group(1)))
    return found


def find_system_lib(soname: str, search: list[Path]) -> Path | None:
    for d in search:
        if (d / soname).exists():
            return d / soname
    return None


def stdlib_files(stdlib: Path) -> list[Path]:
    """The stdlib's .py files (relative), sorted, without the skipped parts."""
    files: list[Path] = []
    for root, dirs, names in os.walk(stdlib):
        rel_root = Path(root).relative_to(stdlib)
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and d != "lib-dynload" and not d.startswith(_SKIP_PREFIXES)
        )
        # sitecustomize.py is a host hook (Debian: a symlink into /etc/python3.X, absent in
        # other roots) that -S never imports; dangling links are nothing to snapshot.
        files.extend(
            rel_root / n
            for n in sorted(names)
            if n.endswith(".py") and n != "sitecustomize.py" and (Path(root) / n).exists()
        )
    return sorted(files)


def write_stdlib_zip(stdlib: Path, dest: Path) -> None:
    """Zip the stdlib sources plus deterministic pycs (this interpreter is the snapshotted one)."""
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in stdlib_files(stdlib):
            src = stdlib / rel
            pyc = Path(tmp) / "x.pyc"
            _compile(src, pyc, str(rel))
            for name, data in (
                (str(rel), src.read_bytes()),
                # zipimport reads `name.pyc` beside `name.py`, never `__pycache__/`:
                # there a pyc is dead weight and every process compiles the stdlib
                # again (0.1 s before the tool's first line, 0.5 s of TensorFlow's import).
                (str(rel.with_suffix(".pyc")), pyc.read_bytes() if pyc.exists() else None),
            ):
                if data is None:
                    continue
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
            if pyc.exists():
                pyc.unlink()


def _compile(src: Path, pyc: Path, dfile: str) -> None:
    try:
        py_compile.compile(
            str(src),
            str(pyc),
            dfile,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        pass  # e.g. a file with syntax for another version: keep the source only


def snapshot(python: str, dest: Path, loader: Path | None = None) -> None:
    """Copy ``python`` (a CPython 3.11 binary) and what it needs into ``dest``, and its
    dynamic loader to ``loader`` if given."""
    info = subprocess.run(
        [
            python,
            "-I",
            "-S",
            "-c",
            "import sys,sysconfig;print(sys.version_info[0],sys.version_info[1]);"
            "print(sysconfig.get_path('stdlib'));print(sysconfig.get_path('platstdlib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    if info[0].split() != ["3", "11"]:
        raise SystemExit(f"python_snapshot: {python} is Python {info[0]}, not 3.11")
    if os.path.realpath(sys.executable) != os.path.realpath(python):
        raise SystemExit("python_snapshot: run this script with the interpreter it snapshots")
    stdlib = Path(info[1])
    dynload = stdlib / "lib-dynload"
    real = Path(os.path.realpath(python))

    (dest / "bin").mkdir(parents=True)
    (dest / "lib" / "python3.11" / "lib-dynload").mkdir(parents=True)
    shutil.copy2(real, dest / "bin" / "python3.11")
    write_stdlib_zip(stdlib, dest / "lib" / "python311.zip")
    exts = sorted(dynload.glob("*.so")) if dynload.is_dir() else []
    for ext in exts:
        shutil.copyfile(ext, dest / "lib" / "python3.11" / "lib-dynload" / ext.name)

    libs = ldd([real, *exts])
    search = sorted({p.parent for p in libs.values()})
    for soname in MANYLINUX_LIBS:
        if soname not in libs:
            found = find_system_lib(soname, search)
            if found is not None:
                libs[soname] = found
    libs.update({k: v for k, v in ldd(list(libs.values())).items() if k not in libs})
    for soname, path in sorted(libs.items()):
        shutil.copyfile(os.path.realpath(path), dest / "lib" / soname)
        os.chmod(dest / "lib" / soname, 0o755)
    if "ld-linux-x86-64.so.2" not in libs:
        raise SystemExit("python_snapshot: no ld-linux-x86-64.so.2 found (not Linux x86_64?)")
    os.chmod(dest / "bin" / "python3.11", 0o755)
    # Remove mtime differences between snapshots: Bazel hashes content, but keep it tidy.
    for root, _, names in os.walk(dest):
        for n in names:
            os.utime(os.path.join(root, n), (315532800, 315532800))
    if loader is not None:
        loader.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(dest / "lib" / "ld-linux-x86-64.so.2", loader)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--python", required=True, help="the CPython 3.11 binary to snapshot")
    p.add_argument("--dest", required=True, help="the directory to fill (the actions' tree)")
    p.add_argument("--loader", default="", help="where to copy the dynamic loader as well")
    args = p.parse_args(argv)
    snapshot(args.python, Path(args.dest), Path(args.loader) if args.loader else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
