"""rules/private/runtime_manifest.py: the content manifest that keys every runtime action.

Expected lines are computed here with hashlib, independently of the tool; the stat cache
is checked by what it hashes (a file with an unchanged stat is not read again) and by
what it must never do (keep an old digest for new bytes).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "rules" / "private"))
import runtime_manifest  # noqa: E402


def later() -> int:
    """ "Now" for the tool, ten minutes ahead: every file just written is old enough to cache.

    Taken at each call, never at import: pytest imports this module long before it runs it."""
    return time.time_ns() + 10 * 60 * 10**9


def tree(root: Path) -> Path:
    site = root / "site-packages"
    (site / "pkg" / "sub").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_bytes(b"x = 1\n")
    (site / "pkg" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 9)
    tool = site / "pkg" / "tool"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o755)
    (site / "pkg" / "link").symlink_to("__init__.py")
    return site


def expected(site: Path) -> list[str]:
    def line(rel: str, mode: str) -> str:
        data = (site / rel).read_bytes()
        return f"{hashlib.sha256(data).hexdigest()} {len(data)} {mode} {rel}"

    # Sorted by path bytes: "__init__.py" < "link" < "sub/..." < "tool".
    return [
        line("pkg/__init__.py", "-"),
        "link __init__.py - pkg/link",
        line("pkg/sub/data.bin", "-"),
        line("pkg/tool", "x"),
    ]


def test_lines_are_sha256_size_mode_path_sorted(tmp_path: Path) -> None:
    site = tree(tmp_path)
    lines, cache, hashed = runtime_manifest.manifest(str(site), {}, now_ns=later())
    assert lines == expected(site)
    assert hashed == 3 and sorted(cache) == ["pkg/__init__.py", "pkg/sub/data.bin", "pkg/tool"]


def test_the_same_bytes_elsewhere_give_the_same_manifest(tmp_path: Path) -> None:
    a = tree(tmp_path / "a")
    b = tree(tmp_path / "b")
    assert runtime_manifest.manifest(str(a), {})[0] == runtime_manifest.manifest(str(b), {})[0]


def test_unchanged_stat_is_not_hashed_again_and_new_bytes_are(tmp_path: Path) -> None:
    site = tree(tmp_path)
    _, cache, _ = runtime_manifest.manifest(str(site), {}, now_ns=later())
    lines, cache2, hashed = runtime_manifest.manifest(str(site), cache, now_ns=later())
    assert hashed == 0 and cache2 == cache and lines == expected(site)

    # Same size, new bytes: the ctime moves, so the digest is recomputed.
    (site / "pkg" / "__init__.py").write_bytes(b"x = 2\n")
    lines, _, hashed = runtime_manifest.manifest(str(site), cache, now_ns=later())
    assert hashed == 1 and lines == expected(site)


def test_a_stale_cache_entry_with_the_same_stat_is_what_racy_files_avoid(tmp_path: Path) -> None:
    site = tree(tmp_path)
    # A listing taken right after a write does not cache that file...
    _, cache, _ = runtime_manifest.manifest(str(site), {}, now_ns=time.time_ns())
    assert cache == {}
    # ...while an old enough one does; a forged entry (same stat, wrong digest) is trusted,
    # which is why racy files are left out.
    _, cache, _ = runtime_manifest.manifest(str(site), {}, now_ns=later())
    forged = {k: [v[0], "0" * 64] for k, v in cache.items()}
    lines, _, hashed = runtime_manifest.manifest(str(site), forged, now_ns=later())
    assert hashed == 0 and lines[0].startswith("0" * 64)


def test_main_writes_the_manifest_and_a_cache_beside_the_tree(tmp_path: Path) -> None:
    site = tree(tmp_path)
    out = tmp_path / "runtime.manifest"
    assert runtime_manifest.main(["--tree", str(site), "--out", str(out)]) == 0
    assert out.read_text().splitlines() == expected(site)
    # Beside the real tree; its entries are empty here (every file was just written).
    assert (tmp_path / ".tfjs_statcache.json").is_file()


def test_a_deleted_install_is_one_line_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "site-packages"
    link = tmp_path / "repo-site-packages"
    os.symlink(gone, link)
    assert runtime_manifest.main(["--tree", str(link), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(gone) in err and "bazel sync --only=tfjs_pip" in err
    assert not (tmp_path / "m").exists()
