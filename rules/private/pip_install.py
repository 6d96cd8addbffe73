"""Install a hash-locked requirements file into a site-packages directory.

Run by the ``tfjs_pip_repository`` repository rule (never by a build action). It
installs with ``pip --no-deps --require-hashes --only-binary=:all:`` so only the exact
wheels named in the lock can land, then byte-compiles with ``unchecked-hash`` pycs:
their bytes depend only on the sources (no mtimes), so two installs of the same lock
give the same action inputs and the same cache keys.

Files nothing imports or opens at run time (C headers, static libraries, sources,
stubs, the test suites of numpy and h5py) are removed after the install: the tree is
one directory input of every conversion, staged whole on a remote executor.

With ``--shared_dir`` the result is installed once per lock digest (and ``LAYOUT``)
under that directory and reused by every output base and checkout (TensorFlow is
~1.3 GB unpacked); the install goes to a temporary sibling and is renamed into place, so
a half-finished install is never reused.
"""

from __future__ import annotations

import argparse
import compileall
import fnmatch
import hashlib
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile

_MARKER = "INSTALL_COMPLETE"

# What an install leaves out (see the module docstring). Changing it changes what an
# install contains: bump LAYOUT, which names the shared install directory.
LAYOUT = 2
_TRIM_DIRS = ("tensorflow/include", "clang", "h5py/tests")
_TRIM_DIR_NAMES_UNDER = {"numpy": "tests"}
_TRIM_FILES = ("*.a", "*.h", "*.pyi", "*.c", "*.cc", "*.pxd")


def lock_digest(lock_path: str) -> str:
    with open(lock_path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def install(lock_path: str, dest: str) -> None:
    """pip-install ``lock_path`` into ``dest/site-packages`` and byte-compile it."""
    site = os.path.join(dest, "site-packages")
    env = dict(os.environ)
    # Reproducible installs: no user site, no bytecode written by pip itself.
    env.update(
        {"PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SOURCE_DATE_EPOCH": "315532800"}
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-compile",
        "--no-warn-script-location",
        "--quiet",
        "--root-user-action=ignore",
        "--target",
        site,
        "-r",
        lock_path,
    ]
    subprocess.run(cmd, check=True, env=env)
    trim(site)
    compileall.compile_dir(
        site,
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    with open(os.path.join(dest, _MARKER), "w", encoding="utf-8") as f:
        f.write(lock_digest(lock_path) + "\n")


def trim(site: str) -> None:
    """Remove what no conversion reads (``_TRIM_*``) from an installed tree."""
    for rel in _TRIM_DIRS:
        shutil.rmtree(os.path.join(site, rel), ignore_errors=True)
    for top, name in _TRIM_DIR_NAMES_UNDER.items():
        for base, dirs, _ in os.walk(os.path.join(site, top)):
            if name in dirs:
                shutil.rmtree(os.path.join(base, name))
                dirs.remove(name)
    for base, _, files in os.walk(site):
        for f in files:
            if any(fnmatch.fnmatch(f, pattern) for pattern in _TRIM_FILES):
                os.remove(os.path.join(base, f))


def install_shared(lock_path: str, shared_dir: str) -> str:
    """Install into ``shared_dir/<sha256 of lock>-<LAYOUT>`` unless already there; return it."""
    final = os.path.join(shared_dir, f"{lock_digest(lock_path)}-{LAYOUT}")
    if os.path.exists(os.path.join(final, _MARKER)):
        return final
    os.makedirs(shared_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=shared_dir)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; other users' builds may share it
    try:
        install(lock_path, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another fetch finished first (or a stale incomplete dir is there).
            if not os.path.exists(os.path.join(final, _MARKER)):
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lock", required=True)
    p.add_argument("--repo_dir", required=True)
    p.add_argument("--shared_dir", default="")
    args = p.parse_args(argv)
    link = os.path.join(args.repo_dir, "site-packages")
    if args.shared_dir:
        final = install_shared(args.lock, args.shared_dir)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.join(final, "site-packages"), link)
    else:
        install(args.lock, args.repo_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
