"""Atomic, non-clobbering outputs.

A conversion writes into a private staging directory next to the final output (same
filesystem, so the final step is a ``rename``). Until that rename nothing at the
output path changes: a failed, interrupted or killed conversion leaves the previous
output intact, or nothing. Staging names carry the writer's pid so a later run can
remove what a ``kill -9`` left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from tfjsconv.errors import ConversionError

_STAGING_PREFIX = ".tfjsconv-staging-"
_STAGING_RE = re.compile(re.escape(_STAGING_PREFIX) + r"(\d+)-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(parent: str) -> None:
    """Delete staging dirs in ``parent`` whose writer process no longer exists."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in sorted(names):
        match = _STAGING_RE.match(name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _check_target(output_path: str, kind: str, overwrite: bool) -> bool:
    """Validate what is at ``output_path``; return True if it must be replaced."""
    if os.path.islink(output_path) and not os.path.exists(output_path):
        raise ConversionError(f"output path is a dangling symlink: {output_path}")
    if not os.path.exists(output_path):
        return False
    if kind == "dir":
        if not os.path.isdir(output_path):
            raise ConversionError(f"output path exists and is not a directory: {output_path}")
        if not os.listdir(output_path):
            return True  # an empty directory (e.g. one Bazel declared) is free to use
        if not overwrite:
            raise ConversionError(
                f"output directory is not empty: {output_path} (pass --overwrite to replace it)"
            )
        return True
    if os.path.isdir(output_path):
        raise ConversionError(f"output path is a directory, expected a file: {output_path}")
    if not overwrite:
        raise ConversionError(f"output file already exists: {output_path} (pass --overwrite to replace it)")
    return True


@contextlib.contextmanager
def staged_output(output_path: str, *, kind: str = "dir", overwrite: bool = False) -> Iterator[str]:
    """Yield a staging path to write into; move it to ``output_path`` on success.

    ``kind`` is ``"dir"`` (the staging path is a fresh empty directory) or ``"file"``
    (the staging path is a file name inside a fresh directory). An existing empty
    output directory is replaced; anything else existing needs ``overwrite``.
    """
    if kind not in ("dir", "file"):
        raise ValueError(f"kind must be 'dir' or 'file', not {kind!r}")
    output_path = os.path.normpath(output_path)
    replace = _check_target(output_path, kind, overwrite)
    parent = os.path.dirname(os.path.abspath(output_path))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise ConversionError(f"cannot create output directory {parent}: {exc.strerror}") from None
    _remove_stale_staging(parent)
    try:
        staging_root = tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=parent)
    except OSError as exc:
        raise ConversionError(f"cannot write in {parent}: {exc.strerror}") from None
    staging = staging_root if kind == "dir" else os.path.join(staging_root, os.path.basename(output_path))
    try:
        yield staging
        if kind == "dir":
            # mkdtemp makes 0700 directories; give the output the usual mode.
            os.chmod(staging_root, 0o755)
        elif not os.path.exists(staging):
            raise ConversionError(f"the converter wrote no output file for {output_path}")
        _publish(staging, output_path, replace, parent)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def _publish(staging: str, output_path: str, replace: bool, parent: str) -> None:
    """Move ``staging`` to ``output_path``, keeping the old output until the end."""
    if not replace:
        os.rename(staging, output_path)
        return
    if os.path.isdir(output_path) and not os.listdir(output_path):
        os.rmdir(output_path)
        os.rename(staging, output_path)
        return
    trash = tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-old-", dir=parent)
    old = os.path.join(trash, "old")
    os.rename(output_path, old)
    try:
        os.rename(staging, output_path)
    except BaseException:
        os.rename(old, output_path)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def check_not_overlapping(input_path: str, output_path: str) -> None:
    """Refuse an output that is, contains, or lies inside the input."""
    src = os.path.realpath(input_path)
    dst = os.path.realpath(output_path)
    if src == dst:
        raise ConversionError(f"output path is the input path: {output_path}")
    if os.path.isdir(src) and dst.startswith(src + os.sep):
        raise ConversionError(f"output path lies inside the input directory: {output_path}")
    if src.startswith(dst + os.sep):
        raise ConversionError(f"output path contains the input: {output_path}")
