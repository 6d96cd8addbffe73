"""Bazel's own REAPI remote worker, built from Debian's bazel-bootstrap-source, on 127.0.0.1.

A real Remote Execution API server (CAS + action cache + execution) for testing
`--remote_executor` offline: the reference worker that ships with Bazel's sources
(`src/tools/remote`), compiled with javac against the installed Bazel's server jar, so
it speaks exactly the protocol version of the local Bazel. Upstream listens on every
interface; the copy compiled here binds to 127.0.0.1 only.

The worker runs inside a private mount namespace in which the given directories (the
host's caches, the checkout, the client's output bases) are covered by empty tmpfs
mounts and the host's Python (`/usr/bin/python3*`, `/usr/lib/python3*`) is hidden, so an
action can only succeed with what Bazel uploaded as its inputs.

    python3 tools/remote_worker/remote_worker.py --dir /tmp/rw --port 8980 [--hide DIR]...

prints the worker's PID and `grpc://127.0.0.1:PORT`; stop it with `kill PID`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SOURCE = Path(
    "/usr/src/bazel-bootstrap/src/tools/remote/src/main/java/com/google/devtools/build/remote/worker"
)
SERVER_JAR = Path("/usr/share/bazel/A-server.jar")
MAIN_CLASS = "com.google.devtools.build.remote.worker.RemoteWorker"
# Upstream: NettyServerBuilder.forPort(port) binds every interface.
_BIND_ALL = "NettyServerBuilder.forPort(workerOptions.listenPort)"
_BIND_LOCAL = (
    'NettyServerBuilder.forAddress(new java.net.InetSocketAddress("127.0.0.1", workerOptions.listenPort))'
)
# The host's Python: an action that finds it has an undeclared input.
HOST_PYTHON = ["/usr/lib/python3.11", "/usr/lib/python3", "/usr/local/lib/python3.11"]
HOST_PYTHON_BINARIES = ["/usr/bin/python3.11", "/usr/bin/python3"]


def _jdk_tool(name: str) -> str:
    """Debian's JDK (the one bazel-bootstrap depends on) first, then PATH."""
    for cand in (f"/usr/lib/jvm/default-java/bin/{name}", shutil.which(name)):
        if cand and os.path.exists(cand):
            return cand
    raise SystemExit(f"remote_worker: {name} not found (apt-get install bazel-bootstrap)")


def missing_prerequisites() -> str | None:
    """Why the worker cannot be built here, or None."""
    if not SOURCE.is_dir():
        return f"{SOURCE} missing (apt-get install bazel-bootstrap-source)"
    if not SERVER_JAR.is_file():
        return f"{SERVER_JAR} missing (apt-get install bazel-bootstrap)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) not found"
    if os.geteuid() != 0:
        return "mount namespaces with tmpfs need root"
    return None


def sources() -> dict[str, bytes]:
    """Relative path -> patched source of every worker Java file."""
    out: dict[str, bytes] = {}
    for path in sorted(SOURCE.rglob("*.java")):
        text = path.read_text()
        if path.name == "RemoteWorker.java":
            if _BIND_ALL not in text:
                raise SystemExit("remote_worker: RemoteWorker.java changed; cannot bind to 127.0.0.1")
            text = text.replace(_BIND_ALL, _BIND_LOCAL)
        out[str(path.relative_to(SOURCE))] = text.encode()
    return out


def compile_worker(cache_dir: Path) -> Path:
    """Compile the patched worker once per source digest; return the classes directory."""
    srcs = sources()
    digest = hashlib.sha256()
    for name, data in srcs.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    digest.update(SERVER_JAR.read_bytes()[: 1 << 20])
    classes = cache_dir / digest.hexdigest()[:16]
    if (classes / "COMPLETE").exists():
        return classes
    tmp = cache_dir / (classes.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "src").mkdir(parents=True)
    files = []
    for name, data in srcs.items():
        dst = tmp / "src" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        files.append(str(dst))
    subprocess.run(
        [
            _jdk_tool("javac"),
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-proc:none",
            "-cp",
            str(SERVER_JAR),
            "-d",
            str(tmp / "classes"),
            *files,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (tmp / "COMPLETE").write_text("")
    shutil.rmtree(classes, ignore_errors=True)
    tmp.rename(classes)
    return classes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def namespace_script(hide_dirs: Sequence[str], command: Sequence[str]) -> str:
    """Shell script run by `unshare --mount`: hide directories, then exec the worker."""
    lines = ["set -e", "mount --make-rprivate /"]
    for d in list(hide_dirs) + HOST_PYTHON:
        lines.append(
            f"if [ -d {shlex.quote(d)} ]; then mount -t tmpfs -o size=1m,mode=0755 tmpfs {shlex.quote(d)}; fi"
        )
    for f in HOST_PYTHON_BINARIES:
        lines.append(f"if [ -e {shlex.quote(f)} ]; then mount --bind /dev/null {shlex.quote(f)}; fi")
    lines.append("exec " + " ".join(shlex.quote(c) for c in command))
    return "\n".join(lines)


class RemoteWorker:
    """One worker process: start() -> grpc URL; stop() kills exactly that PID."""

    def __init__(self, work_dir: Path, classes: Path, hide_dirs: Sequence[str], jobs: int = 2):
        self.work_dir = work_dir
        self.classes = classes
        self.hide_dirs = list(hide_dirs)
        self.jobs = jobs
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def cas(self) -> Path:
        return self.work_dir / "cas"

    def start(self, timeout: float = 60) -> str:
        for sub in ("cas", "exec", "tmp"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        java = [
            _jdk_tool("java"),
            f"-Djava.io.tmpdir={self.work_dir / 'tmp'}",
            "-Xmx1g",
            "-cp",
            f"{self.classes / 'classes'}:{SERVER_JAR}",
            MAIN_CLASS,
            f"--listen_port={self.port}",
            f"--work_path={self.work_dir / 'exec'}",
            f"--cas_path={self.cas}",
            f"--jobs={self.jobs}",
            f"--pid_file={self.work_dir / 'worker.pid'}",
        ]
        script = namespace_script(self.hide_dirs, java)
        log = open(self.work_dir / "worker.log", "wb")
        # unshare and sh exec into java: the PID we hold is the worker's.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("remote worker exited: " + self.log_tail())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return f"grpc://127.0.0.1:{self.port}"
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("remote worker did not listen in time: " + self.log_tail())

    def log_tail(self, n: int = 4000) -> str:
        path = self.work_dir / "worker.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None


def cas_blobs(cas: Path) -> dict[str, int]:
    """CAS file name -> size (action-cache entries excluded)."""
    out: dict[str, int] = {}
    for root, _, names in os.walk(cas):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, cas)
            if rel.startswith("ac") or n.endswith(".tmp"):
                continue
            out[rel] = os.path.getsize(p)
    return out


def cas_delta(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """(new blobs, new bytes) between two cas_blobs() snapshots."""
    new = [k for k in after if k not in before]
    return len(new), sum(after[k] for k in new)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="work directory (CAS, exec roots, log)")
    p.add_argument("--hide", action="append", default=[], help="directory to hide (repeatable)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    why = missing_prerequisites()
    if why:
        print(f"remote_worker: {why}", file=sys.stderr)
        return 1
    work = Path(args.dir).resolve()
    worker = RemoteWorker(work, compile_worker(work / "classes"), args.hide, args.jobs)
    url = worker.start()
    assert worker.proc is not None
    print(f"{worker.proc.pid} {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
