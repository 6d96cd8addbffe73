"""The `TfjsConvert` action: runs the tfjsconv CLI once, or as a persistent worker.

One-shot mode (no worker): ``tfjs_convert_tool @flagfile`` calls ``tfjsconv.cli.main``
once; the CLI expands the flag file (one argument per line).

Worker mode (``--persistent_worker``): Bazel's JSON worker protocol. Bazel 4.2.3
writes requests back to back with no separator, so the stream is parsed with
``json.JSONDecoder.raw_decode`` rather than line by line. The protocol owns the
process's real stdout; everything else (Python prints and C++ logging from
TensorFlow) is kept off it: fd 1 is pointed at stderr, and each request's CLI
output is captured into the response's ``output``. TensorFlow is imported once and
reused, which is the point of the worker.

Hermetic mode (what ``tfjs_model`` runs): the action's executable is the snapshot
interpreter of ``tfjs_python_snapshot`` started through its own dynamic loader, with
``-S`` (no site, so no host site-packages). Startup flags that come before the flag file
(the same for every request, so they are part of the worker key):

* ``--sys_path=DIR`` (repeatable): execroot-relative import roots (the converter
  sources, the locked site-packages), put first on ``sys.path``.
* ``--check_hermetic``: after each request, fail if a loaded shared object or an
  imported module lives outside the action's input tree (the working directory),
  proving on an executor that nothing came from the host by accident.
* ``--entry=migrate`` / ``--entry=predict`` / ``--entry=web_package``: run
  ``tfjs_pb2json`` (the ``TfjsMigrate`` action of ``tfjs_migrated_model``),
  ``tfjs_predict_tool`` (``tfjs_model_test``'s ``TfjsPredict``) or the web packaging
  (``tfjs_web_package``'s ``TfjsWebPackage``) once instead of the converter CLI, in the
  same runtime.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO

_STARTED = time.monotonic()

# Host files any Linux process may read that cannot change a conversion's bytes:
# kernel pseudo-files, anonymous shared memory (memfd, SysV) and glibc's C.UTF-8 locale
# data (glibc >= 2.35 has a built-in C.UTF-8 it uses when these are absent).
_HOST_ALLOWED = (
    "/dev/",
    "/proc/",
    "/sys/",
    "/memfd:",
    "/SYSV",
    "/usr/lib/locale/",
    "/usr/lib/x86_64-linux-gnu/gconv/",
)


def split_startup_args(argv: Sequence[str]) -> tuple[list[str], bool, str, list[str]]:
    """(sys_path entries, check_hermetic, entry, remaining args) from the leading
    startup flags; the entry is "convert" unless ``--entry=`` names another."""
    paths: list[str] = []
    check = False
    entry = "convert"
    rest: list[str] = []
    for arg in argv:
        if arg.startswith("--sys_path="):
            paths.append(arg[len("--sys_path=") :])
        elif arg == "--check_hermetic":
            check = True
        elif arg.startswith("--entry="):
            entry = arg[len("--entry=") :]
        else:
            rest.append(arg)
    return paths, check, entry, rest


def foreign_files(root: str) -> list[str]:
    """Loaded shared objects and imported modules that are not under ``root``."""
    root = os.path.join(os.path.realpath(root), "")
    seen = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    seen.add(parts[5].strip().replace(" (deleted)", ""))
    except OSError:
        pass
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if isinstance(path, str):
            seen.add(os.path.abspath(path))
    bad = []
    for path in sorted(seen):
        if path.startswith(_HOST_ALLOWED):
            continue
        # Archive members (python311.zip/os.py) count as the archive.
        if not os.path.realpath(path).startswith(root) and not path.startswith(root):
            bad.append(path)
    return bad


def _private_home() -> None:
    """Give Keras/TF a writable, throwaway home: the sandbox may not allow ~/.keras."""
    home = tempfile.mkdtemp(prefix="tfjs_convert_home_")
    atexit.register(shutil.rmtree, home, True)
    os.environ["KERAS_HOME"] = os.path.join(home, ".keras")
    os.environ["HOME"] = home


def run_cli(argv: Sequence[str], check_hermetic: bool = False) -> tuple[int, str]:
    """Run the converter CLI in-process; return (exit code, combined output)."""
    from tfjsconv import cli

    # Sandboxes (linux-sandbox, sandboxed workers) stage every declared input as a
    # symlink out of the sandbox; Bazel, not the model, decides what those are.
    args = ["--follow_symlinks", *argv]
    return _captured(lambda out: cli.main(args, stdout=out, stderr=out), check_hermetic)


def run_entry(entry: str, argv: Sequence[str], check_hermetic: bool = False) -> tuple[int, str]:
    """Run tfjs_pb2json ("migrate"), tfjs_predict_tool ("predict") or tfjs_web_package
    ("web_package") in-process; return (exit code, combined output)."""
    entry_main: Callable[..., int]
    if entry == "migrate":
        from tfjsconv_pb2json.cli import main as migrate_main

        entry_main = migrate_main
    elif entry == "predict":
        from tfjs_predict_tool import main as predict_main

        entry_main = predict_main
    elif entry == "web_package":
        from tfjsconv.webpackage.cli import main as web_package_main

        entry_main = web_package_main
    else:
        return 2, f"tfjs_convert_tool: unknown --entry={entry} (convert, migrate, predict or web_package)\n"

    def run(out: IO[str]) -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            return entry_main(list(argv))

    return _captured(run, check_hermetic)


def _captured(run: Callable[[IO[str]], int], check_hermetic: bool) -> tuple[int, str]:
    """``run(out)``'s exit code and everything it wrote to ``out``.  Nothing it raises
    ends the process (a worker serves the next request): ``sys.exit`` becomes its code,
    a bug its traceback.  With ``check_hermetic``, a module or shared object loaded from
    outside the action's inputs fails the request (exit 4, the files named)."""
    buf = io.StringIO()
    try:
        code = run(buf)
    except SystemExit as exc:  # a library (or argparse) calling sys.exit
        code = exc.code if isinstance(exc.code, int) else 1
        if exc.code is not None and not isinstance(exc.code, int):
            buf.write(f"{exc.code}\n")
    except Exception:  # a bug: report it instead of killing the worker
        from tfjsconv.errors import report_internal_error

        code = report_internal_error("tfjs_convert_tool", buf)
    _reset_framework_state()
    if check_hermetic:
        bad = foreign_files(os.getcwd())
        if bad:
            buf.write(
                "tfjs_convert_tool: files outside the action's inputs were used: {}\n".format(", ".join(bad))
            )
            code = code or 4
    return code, buf.getvalue()


def _reset_framework_state() -> None:
    """Forget per-process Keras state (auto-generated names) between requests."""
    for mod_name in ("tf_keras", "keras"):
        mod = sys.modules.get(mod_name)
        if mod is None:
            continue
        try:
            mod.backend.clear_session()
        except Exception:  # best effort: an older/newer Keras may lack it
            pass


def iter_requests(stream: IO[bytes]) -> Iterator[dict]:
    """Yield JSON objects from a byte stream, with or without separators."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        buf += text_decoder.decode(chunk)
        while True:
            stripped = buf.lstrip()
            if not stripped:
                buf = ""
                break
            try:
                obj, end = decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                buf = stripped  # incomplete: wait for more bytes
                break
            buf = stripped[end:]
            yield obj


# A request read by a worker that then restarted itself on new sources (see below).
_PENDING = "TFJS_CONVERT_TOOL_PENDING_REQUEST"


def source_fingerprint(roots: Sequence[str]) -> str:
    """Digest of the converter's sources (``*.py``/``*.json`` under each root's ``tfjsconv``)
    and of this tool: what a worker has imported, or will import lazily."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    files = [os.path.abspath(__file__)]
    for root in roots:
        for base, dirs, names in os.walk(os.path.join(root, "tfjsconv")):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            files.extend(os.path.join(base, n) for n in sorted(names) if n.endswith((".py", ".json")))
    for path in files:
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as f:
                digest.update(f.read())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def _restart(request: dict, protocol_out: IO[str]) -> None:
    """Replace this process by a fresh one on the same pipes, handing it ``request``.

    Bazel 4.2.3 keeps a persistent worker when the converter's sources change (its worker
    key does not follow them here), so a worker that kept its imported modules would
    write new action keys' outputs with old code, and caches would keep them. exec keeps
    the PID and the pipes: Bazel sees the same worker answer the request."""
    protocol_out.flush()
    os.dup2(protocol_out.fileno(), 1)  # the protocol channel back on fd 1 (inherited)
    with open("/proc/self/cmdline", "rb") as f:
        argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0") if a]
    # Only what run_cli reads: a request also lists every input with its digest (~10k).
    os.environ[_PENDING] = json.dumps({k: request[k] for k in ("arguments", "requestId") if k in request})
    sys.stderr.flush()
    atexit._run_exitfuncs()  # exec skips them: the private home would stay behind
    os.execv(argv[0], argv)


def worker_main(
    stdin: IO[bytes], protocol_out: IO[str], check_hermetic: bool = False, source_roots: Sequence[str] = ()
) -> int:
    """Serve work requests until Bazel closes stdin."""
    handled = 0
    pending = os.environ.pop(_PENDING, None)
    requests = iter_requests(stdin)
    if pending is not None:
        requests = itertools.chain([json.loads(pending)], requests)
    loaded = None
    for request in requests:
        # Sources change between builds; the sandbox stages each request's inputs first.
        current = source_fingerprint(source_roots)
        if loaded is None:
            loaded = current
        elif current != loaded:
            print(
                f"tfjs_convert_tool: worker pid {os.getpid()}: converter sources changed, restarting",
                file=sys.stderr,
                flush=True,
            )
            _restart(request, protocol_out)
        # ``cli.main`` expands ``@flagfile`` arguments itself (one argument per line).
        began = time.monotonic()
        code, output = run_cli(request.get("arguments", []), check_hermetic)
        handled += 1
        # One line per request in the worker log: lets tests see the worker was reused,
        # and bench/bench_cold_build.py split an action's time (the first request pays
        # for the imports, TensorFlow's included).
        print(
            f"tfjs_convert_tool: worker pid {os.getpid()} handled request {handled} (exit {code})"
            f" in {time.monotonic() - began:.3f} s, {began - _STARTED:.3f} s after the process started",
            file=sys.stderr,
            flush=True,
        )
        response = {"exitCode": code, "output": output, "requestId": request.get("requestId", 0)}
        protocol_out.write(json.dumps(response, sort_keys=True) + "\n")
        protocol_out.flush()
    return 0


def main(argv: Sequence[str]) -> int:
    paths, check_hermetic, entry, argv = split_startup_args(argv)
    # Before the converter is imported: the declared inputs come first on sys.path.
    sys.path[:0] = paths
    _private_home()
    if "--persistent_worker" in argv:
        # Keep the protocol channel private and send fd 1 (C++ logs, stray prints) to stderr.
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", closefd=False)
        protocol_out = os.fdopen(protocol_fd, "w", encoding="utf-8")
        return worker_main(sys.stdin.buffer, protocol_out, check_hermetic, paths[:1])
    if entry == "convert":
        code, output = run_cli(argv, check_hermetic)
    else:
        code, output = run_entry(entry, argv, check_hermetic)
    if output:
        sys.stderr.write(output)
    return code


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    # On sys.path since main(): ends the process without TensorFlow's 0.5 s teardown.
    from tfjsconv import tf_env

    tf_env.exit_process(exit_code)
