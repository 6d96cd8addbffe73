"""Write the content manifests of the runtime's trees (site-packages, the interpreter), cheaply.

Run by the ``tfjs_pip_manifest`` repository rule at every Bazel server start (never by
a build action). Conversion actions take the locked site-packages and the interpreter
snapshot each as one directory input, which Bazel tracks by the directory's own metadata
only; the manifests written here are what tie their cache keys to the trees' content: one
line per file with its sha256, size and executable bit, sorted by path. The same install
gives the same manifest on every machine, and a changed byte anywhere gives another one.

Hashing the 1.5 GB of site-packages takes seconds, so digests are remembered in a
machine-local stat cache (``.tfjs_statcache.json`` beside each tree) keyed by each file's
(size, mtime, ctime, inode, device), the way ``git`` keeps its index: a file whose stat
is unchanged keeps its digest, any write changes the ctime and the file is hashed again
(and a file written in the last two seconds is not cached at all).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator

_CACHE_VERSION = 1
_CHUNK = 1 << 20


def walk(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to ``root``, full path, lstat) of every non-directory entry, sorted
    by path. Directories are told apart by their directory entry's type, not a ``stat``:
    this runs at every server start, on the critical path of the first build."""
    stack = [root]
    found: list[tuple[str, str, os.stat_result]] = []
    prefix = len(root) + 1
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    found.append((entry.path[prefix:], entry.path, entry.stat(follow_symlinks=False)))
    found.sort(key=lambda item: os.fsencode(item[0]))
    yield from found


def stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def load_cache(path: str) -> dict[str, list]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def save_cache(path: str, entries: dict[str, list]) -> None:
    """Atomically replace the cache; a read-only location just means no cache."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".statcache-", dir=os.path.dirname(path))
    except OSError:
        return
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from other users of a shared install
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": _CACHE_VERSION, "entries": entries}, f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def quote(rel: str) -> str:
    """A path on one line: backslash and newline escaped (names are otherwise kept)."""
    return rel.replace("\\", "\\\\").replace("\n", "\\n")


# A file changed less than this before the listing is not cached: a second write within
# the same timestamp tick would keep its stat and hide the new bytes (git's "racy clean").
_RACY_NS = 2_000_000_000


def manifest(
    root: str, cache: dict[str, list], now_ns: int | None = None
) -> tuple[list[str], dict[str, list], int]:
    """(manifest lines, the new stat cache, how many files were hashed)."""
    lines: list[str] = []
    new_cache: dict[str, list] = {}
    hashed = 0
    racy_after = (time.time_ns() if now_ns is None else now_ns) - _RACY_NS
    for rel, path, st in walk(root):
        if stat.S_ISLNK(st.st_mode):
            lines.append(f"link {os.readlink(path)} - {quote(rel)}")
            continue
        if not stat.S_ISREG(st.st_mode):
            raise SystemExit(f"runtime_manifest: {path} is not a regular file, directory or symlink")
        key = stat_key(st)
        cached = cache.get(rel)
        if cached and cached[0] == key:
            digest = cached[1]
        else:
            digest = file_digest(path)
            hashed += 1
        if max(st.st_mtime_ns, st.st_ctime_ns) < racy_after:
            new_cache[rel] = [key, digest]
        mode = "x" if st.st_mode & 0o111 else "-"
        lines.append(f"{digest} {st.st_size} {mode} {quote(rel)}")
    return lines, new_cache, hashed


def write_manifest(tree: str, out: str) -> int:
    """List ``tree`` into ``out`` with the stat cache beside the real tree; exit code."""
    root = os.path.realpath(tree)
    if not os.path.isdir(root):
        # The shared install was deleted by hand: Bazel still holds @tfjs_pip as fetched.
        print(
            f"runtime_manifest: the installed tree {root} is gone; install it again with "
            "`bazel sync --only=tfjs_pip` (WORKSPACE) or `bazel clean --expunge`",
            file=sys.stderr,
        )
        return 2
    cache_path = os.path.join(os.path.dirname(root), ".tfjs_statcache.json")
    cache = load_cache(cache_path)
    lines, new_cache, hashed = manifest(root, cache)
    if hashed or new_cache.keys() != cache.keys():
        save_cache(cache_path, new_cache)
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))
    print(f"runtime_manifest: {root}: {len(lines)} files, {hashed} hashed", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--tree",
        action="append",
        required=True,
        help="a tree to list (repeatable); its stat cache is .tfjs_statcache.json beside it",
    )
    p.add_argument("--out", action="append", required=True, help="the manifest of each --tree, in order")
    args = p.parse_args(argv)
    if len(args.tree) != len(args.out):
        p.error("give one --out per --tree")
    # One process for every tree: this runs at each server start, before analysis ends.
    for tree, out in zip(args.tree, args.out, strict=True):
        code = write_manifest(tree, out)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
