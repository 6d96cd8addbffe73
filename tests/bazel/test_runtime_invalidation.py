"""The runtime's content is in every conversion's cache key, and nothing else of it is.

Conversions take the locked site-packages and the interpreter snapshot as one directory
input each plus ``@tfjs_pip_manifest//:runtime.manifest`` and ``:python.manifest`` (the
sha256 of every file in them), which are listed again at every server start. These tests build in a checkout and output base of
their own, against a private copy of the shared install (hard links, broken before a
file is rewritten: the real install is never written), and check:

* the same content at another install path is a cache hit (keys do not name paths);
* touching a file (new mtime and ctime, same bytes) is a cache hit;
* one changed byte in one file of one package, or of the interpreter's tree, re-runs
  exactly the runtime's actions (both conversions), and the manifest names that file with
  its new digest;
* a persistent worker's execroot left by an older layout (site-packages as a real
  directory) does not break the next conversion.

    .venv/bin/python -m pytest tests/bazel/test_runtime_invalidation.py -q
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from checkout import copy_checkout

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "rules" / "private"))
import pip_install  # noqa: E402
from test_bazel_rules import BAZEL, converts, read_exec_log, target_of  # noqa: E402

pytestmark = pytest.mark.skipif(BAZEL is None, reason="bazel is not installed")

TARGETS = ["//examples:mlp_graph", "//examples:mlp_layers"]
# A file of a locked package that conversions import (six, through TensorFlow).
CHANGED = "six.py"


class Build:
    def __init__(self, workspace: Path, output_base: Path, logs: Path) -> None:
        self.workspace, self.output_base, self.logs = workspace, output_base, logs
        self.shared_dir = ""
        self.calls = 0

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        if self.shared_dir:
            env["RULES_TFJS_PIP_SHARED_DIR"] = self.shared_dir
        cmd = [BAZEL, f"--output_base={self.output_base}", "--max_idle_secs=600", *args]
        proc = subprocess.run(cmd, cwd=self.workspace, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
        return proc

    def converted(self, *flags: str) -> list[str]:
        """Build TARGETS; return the targets whose conversion ran (not a cache hit)."""
        self.calls += 1
        log = self.logs / f"exec-{self.calls}.json"
        self.run("build", f"--execution_log_json_file={log}", *flags, *TARGETS)
        return sorted(target_of(s) for s in converts(read_exec_log(log)) if not s["remoteCacheHit"])

    def restart(self) -> None:
        subprocess.run(
            [BAZEL, f"--output_base={self.output_base}", "shutdown"],
            cwd=self.workspace,
            capture_output=True,
            timeout=120,
        )

    def manifest(self, name: str = "runtime.manifest") -> dict[str, str]:
        text = (self.output_base / "external" / "tfjs_pip_manifest" / name).read_text()
        return {line.split(" ", 3)[3]: line.split(" ", 1)[0] for line in text.splitlines()}


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Iterator[Build]:
    base = tmp_path_factory.mktemp("runtime")
    (base / "logs").mkdir()
    b = Build(copy_checkout(base / "ws"), base / "ob", base / "logs")
    # The disk cache stands in for a remote cache: a hit there is a hit on the action key.
    (b.workspace / "user.bazelrc").write_text(f"build --disk_cache={base / 'disk'}\n")
    try:
        yield b
    finally:
        b.restart()
        subprocess.run(["chmod", "-R", "u+w", str(base)], capture_output=True)


def private_install(build: Build, dst: Path) -> Path:
    """A hard-linked copy of the install this build uses; return its site-packages."""
    site = (build.output_base / "external" / "tfjs_pip" / "site-packages").resolve()
    install = site.parent
    assert (install / "INSTALL_COMPLETE").is_file(), install
    copy = dst / install.name
    subprocess.run(["cp", "-al", str(install), str(copy)], check=True)
    (copy / ".tfjs_statcache.json").unlink(missing_ok=True)  # computed afresh for the copy
    return copy / "site-packages"


def test_runtime_content_alone_is_in_the_key(build: Build, tmp_path: Path) -> None:
    assert build.converted() == sorted(TARGETS)
    assert build.converted() == []

    # The same bytes at another path (another user's cache, another machine): cache hits.
    shared = tmp_path / "shared"
    shared.mkdir()
    site = private_install(build, shared)
    assert (
        site.parent.name
        == f"{pip_install.lock_digest(str(REPO / 'requirements' / 'runtime.lock'))}-{pip_install.LAYOUT}"
    )
    before = build.manifest()
    build.shared_dir = str(shared)
    build.run("clean")
    assert build.converted() == []
    assert (build.output_base / "external" / "tfjs_pip" / "site-packages").resolve() == site
    assert build.manifest() == before

    # Rewritten with the same bytes (new inode, mtime and ctime; the hard link broken, so
    # the real install is untouched): after a server restart the file is hashed again, and
    # the key stays.
    target = site / CHANGED
    fresh = target.with_name(CHANGED + ".new")
    shutil.copyfile(target, fresh)
    os.replace(fresh, target)
    build.restart()
    assert build.converted() == []

    # One byte of one package's file changed: every action that runs in the runtime runs
    # again.
    data = target.read_bytes()
    assert data.startswith(b"# Copyright")
    target.write_bytes(b"# copyright" + data[len(b"# Copyright") :])
    build.restart()
    assert build.converted() == sorted(TARGETS)
    after = build.manifest()
    assert after[CHANGED] == hashlib.sha256(target.read_bytes()).hexdigest() != before[CHANGED]
    assert {k for k in after if after[k] != before.get(k)} == {CHANGED}
    # Back to the original bytes: the first key again, served from the cache.
    target.write_bytes(data)
    build.restart()
    assert build.converted() == []
    build.shared_dir = ""  # back to the default install before this copy goes
    shutil.rmtree(shared, ignore_errors=True)


def test_interpreter_tree_content_is_in_the_key(build: Build) -> None:
    """The snapshot's tree is one directory input too: its manifest carries its content."""
    build.shared_dir = ""
    build.restart()
    build.converted()
    assert build.converted() == []
    before = build.manifest("python.manifest")
    # A stdlib extension module no conversion loads: one more byte at the end of an ELF
    # file changes its digest, not how the interpreter runs.
    rel = "lib/python3.11/lib-dynload/xxlimited.cpython-311-x86_64-linux-gnu.so"
    assert rel in before, sorted(before)[:5]
    target = build.output_base / "external" / "tfjs_python" / "python" / rel
    data = target.read_bytes()
    target.write_bytes(data + b"\0")
    try:
        build.restart()
        assert build.converted() == sorted(TARGETS)
        after = build.manifest("python.manifest")
        assert after[rel] == hashlib.sha256(data + b"\0").hexdigest() != before[rel]
        assert {k for k in after if after[k] != before.get(k)} == {rel}
    finally:
        target.write_bytes(data)
    build.restart()
    assert build.converted() == []


def test_worker_execroot_left_by_an_older_layout(build: Build) -> None:
    """A worker's execroot outlives its server. Releases that listed site-packages file by
    file (and `granular = True`) leave a real directory at external/tfjs_pip/site-packages
    there, which Bazel 4.2.3 cannot replace with a symlink ("Directory not empty"): the
    directory input has another name, so that directory is only deleted."""
    build.shared_dir = ""
    build.restart()
    workspace = re.search(r'workspace\(name = "([^"]+)"', (build.workspace / "WORKSPACE").read_text())
    assert workspace, "WORKSPACE names no workspace"
    for n in (1, 2):  # a new server numbers its workers from 1; two TfjsConvert instances
        pip = (
            build.output_base
            / "bazel-workers"
            / f"worker-{n}-TfjsConvert"
            / workspace[1]
            / "external"
            / "tfjs_pip"
        )
        stale = pip / "site-packages"
        if stale.is_symlink():
            stale.unlink()
        shutil.rmtree(stale, ignore_errors=True)
        (stale / "six").mkdir(parents=True)
        (stale / "six" / "__init__.py").write_text("")
    build.run("clean")
    # No disk cache: the conversions run, so each worker's execroot is prepared again.
    assert build.converted("--disk_cache=") == sorted(TARGETS)
