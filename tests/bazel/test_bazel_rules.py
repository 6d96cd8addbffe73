"""End-to-end tests of the Bazel rules (Bazel 4.2.3, offline).

The workspace is copied to two temporary checkouts at different absolute paths (so
edits other people make to the repo while this runs cannot interfere), each with its
own output base. The heavy pip install is shared through the lock-keyed install
directory, so the only cold cost is analysis plus a handful of tiny conversions.

Order matters and is kept by pytest's file order: the first test builds, later tests
reuse that output base.

    .venv/bin/python -m pytest tests/bazel/test_bazel_rules.py -q
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from checkout import copy_checkout

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "remote_worker"))
import grpc_log  # noqa: E402
import remote_worker  # noqa: E402

BAZEL = shutil.which("bazel")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(BAZEL is None, reason="bazel is not installed")

TARGETS = [
    "//examples:mlp_layers",
    "//examples:mlp_graph",
    "//examples:mlp_layers_uint8",
    "//examples:module_graph",
]


# --- helpers -------------------------------------------------------------------------


def copy_workspace(dst: Path) -> Path:
    return copy_checkout(dst)


class Bazel:
    """One checkout + one output base; every call waits and captures output."""

    def __init__(self, workspace: Path, output_base: Path, logs: Path):
        self.workspace = workspace
        self.output_base = output_base
        self.logs = logs
        self.calls = 0

    def run(self, *args: str, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
        cmd = [BAZEL, f"--output_base={self.output_base}", "--max_idle_secs=600", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        proc = subprocess.run(
            cmd, cwd=self.workspace, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
        return proc

    def build(self, *args: str, check: bool = True) -> list[dict]:
        """Build; return the spawns Bazel ran or took from a cache (execution log)."""
        self.calls += 1
        log = self.logs / f"{self.output_base.name}-exec-{self.calls}.json"
        self.run("build", f"--execution_log_json_file={log}", *args, check=check)
        return read_exec_log(log)

    def bin_dir(self) -> Path:
        return self.workspace / "bazel-bin"

    def shutdown(self) -> None:
        subprocess.run(
            [BAZEL, f"--output_base={self.output_base}", "shutdown"],
            cwd=self.workspace,
            capture_output=True,
            timeout=120,
        )


def read_exec_log(path: Path) -> list[dict]:
    """Bazel 4 writes pretty-printed JSON objects back to back."""
    if not path.exists():
        return []
    text = path.read_text()
    decoder = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)


def converts(spawns: list[dict]) -> list[dict]:
    return [s for s in spawns if s.get("mnemonic") == "TfjsConvert"]


def target_of(spawn: dict) -> str:
    return re.search(r"\((//[^)]+)\)$", spawn["progressMessage"]).group(1)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(bazel: Bazel) -> dict[str, dict[str, bytes]]:
    return {t: tree_bytes(bazel.bin_dir() / "examples" / t.split(":")[1]) for t in TARGETS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory) -> Iterator[str]:
    """nginx with WebDAV PUT: a real HTTP remote cache for Bazel on 127.0.0.1."""
    if NGINX is None:
        pytest.skip("nginx is not installed")
    d = tmp_path_factory.mktemp("nginx")
    (d / "root").mkdir()
    (d / "tmp").mkdir()
    port = free_port()
    conf = d / "nginx.conf"
    conf.write_text(f"""
daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {d}/root;
    client_max_body_size 0;
    location / {{
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
  }}
}}
""")
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-e", str(d / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"nginx did not start: {(d / 'error.log').read_text()}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def env(tmp_path_factory, cache_server):
    base = tmp_path_factory.mktemp("bazel")  # checkouts + output bases: hidden from executors
    logs = base / "logs"
    logs.mkdir()
    first = Bazel(copy_workspace(base / "a" / "rules_tfjs"), base / "ob1", logs)
    second = Bazel(copy_workspace(base / "elsewhere" / "deeper" / "rules_tfjs"), base / "ob2", logs)
    state = {
        "first": first,
        "second": second,
        "remote": cache_server,
        "disk": base / "disk_cache",
        "base": base,
    }
    try:
        yield state
    finally:
        first.shutdown()
        second.shutdown()


def caches(env) -> list[str]:
    return [f"--remote_cache={env['remote']}", f"--disk_cache={env['disk']}"]


# --- tests ---------------------------------------------------------------------------


def test_cold_build_uses_one_worker_for_several_actions(env):
    first: Bazel = env["first"]
    spawns = converts(first.build(*caches(env), *TARGETS))
    assert sorted(target_of(s) for s in spawns) == sorted(TARGETS)
    assert {s["runner"] for s in spawns} == {"worker"}
    assert not any(s["remoteCacheHit"] for s in spawns)
    for t in TARGETS:
        assert (first.bin_dir() / "examples" / t.split(":")[1] / "model.json").is_file()
    # Every request is logged by the worker with its pid: 4 actions, at most 2 workers.
    handled: dict[str, int] = {}
    for log in (first.output_base / "bazel-workers").glob("*TfjsConvert*.log"):
        for pid in re.findall(r"worker pid (\d+) handled request", log.read_text()):
            handled[pid] = handled.get(pid, 0) + 1
    assert sum(handled.values()) == len(TARGETS)
    assert max(handled.values()) >= 2, handled


def test_noop_rebuild_runs_no_action(env):
    first: Bazel = env["first"]
    assert first.build(*caches(env), *TARGETS) == []


def test_changing_one_attribute_reruns_exactly_that_target(env):
    first: Bazel = env["first"]
    build_file = first.workspace / "examples" / "BUILD.bazel"
    original = build_file.read_text()
    assert original.count("weight_shard_size_bytes = 24") == 1
    build_file.write_text(original.replace("weight_shard_size_bytes = 24", "weight_shard_size_bytes = 16"))
    try:
        spawns = converts(first.build(*caches(env), *TARGETS))
        assert [target_of(s) for s in spawns] == ["//examples:mlp_layers_uint8"]
        shards = sorted(p.name for p in (first.bin_dir() / "examples" / "mlp_layers_uint8").glob("*.bin"))
        assert "group1-shard3of3.bin" in shards  # 40 bytes of layer 1 in 16-byte shards
    finally:
        build_file.write_text(original)
    # Back to the original attribute: served from the cache, not re-converted.
    spawns = converts(first.build(*caches(env), *TARGETS))
    assert [s["remoteCacheHit"] for s in spawns] == [True]


def test_two_checkouts_at_different_paths_are_byte_identical(env):
    """Also worker vs. one sandboxed process per action: the second build uses no worker."""
    first: Bazel = env["first"]
    second: Bazel = env["second"]
    assert str(first.workspace) != str(second.workspace)
    # No cache: converts everything itself, each in a fresh sandboxed process.
    spawns = converts(second.build("--strategy=TfjsConvert=linux-sandbox", *TARGETS))
    assert len(spawns) == len(TARGETS) and not any(s["remoteCacheHit"] for s in spawns)
    assert {s["runner"] for s in spawns} == {"linux-sandbox"}
    a, b = outputs(first), outputs(second)
    assert a == b
    for t in TARGETS:
        for content in a[t].values():
            assert str(first.workspace).encode() not in content
            assert str(second.workspace).encode() not in content


def test_remote_cache_hits_in_second_output_base(env):
    second: Bazel = env["second"]
    second.run("clean")
    spawns = converts(second.build(f"--remote_cache={env['remote']}", *TARGETS))
    assert len(spawns) == len(TARGETS)
    assert all(s["remoteCacheHit"] for s in spawns), [(target_of(s), s["runner"]) for s in spawns]
    assert outputs(second) == outputs(env["first"])


def test_disk_cache_hits_after_clean(env):
    first: Bazel = env["first"]
    expected = outputs(first)
    first.run("clean")
    spawns = converts(first.build(f"--disk_cache={env['disk']}", *TARGETS))
    assert len(spawns) == len(TARGETS)
    assert all(s["remoteCacheHit"] for s in spawns)
    assert outputs(first) == expected


# The analysis-time errors (every fail() message), TfjsModelInfo and the action's argv
# and env per attribute are Starlark analysis tests: tests/analysis (run by the last test
# and by `bazel test //...` on both Bazels). Repository rules fail while fetching, which
# analysistest cannot see: checked here.


def test_relative_interpreter_fails_with_a_clear_message(env):
    first: Bazel = env["first"]
    proc = first.run(
        "build",
        "--nobuild",
        "--repo_env=RULES_TFJS_PYTHON=python3",
        "@tfjs_pip_python//:runtime_pair",
        check=False,
    )
    assert proc.returncode != 0
    assert 'tfjs_python_repository: the interpreter must be an absolute path, got "python3"' in proc.stderr, (
        proc.stderr[-3000:]
    )


# tfjs_model_test: one target per fail() in rules/private/tfjs_model_test.bzl.
_MODEL_TEST_SUPPORT = """
tfjs_model(name = "graph", src = "m.h5", input_format = "keras", output_format = "tfjs_graph_model")
tfjs_model(name = "chained", src = ":graph_layers", input_format = "tfjs_layers_model",
           output_format = "tfjs_graph_model")
tfjs_model(name = "graph_layers", src = "m.h5", input_format = "keras")
tfjs_model(name = "to_h5", src = ":graph_layers", input_format = "tfjs_layers_model", output_format = "keras")
"""
BAD_MODEL_TESTS = {
    "not_tfjs": (
        'tfjs_model_test(name = "not_tfjs", model = ":to_h5", inputs = "i.json", expected = "o.json")',
        "model //badtests:to_h5 is a keras; tfjs_model_test runs tfjs_graph_model and "
        "tfjs_layers_model outputs",
    ),
    "bad_atol": (
        'tfjs_model_test(name = "bad_atol", model = ":graph", inputs = "i.json", expected = "o.json", '
        'atol = "tiny")',
        'atol must be a non-negative number such as "1e-5", got "tiny"',
    ),
    "bad_rtol": (
        'tfjs_model_test(name = "bad_rtol", model = ":graph", inputs = "i.json", expected = "o.json", '
        'rtol = "-1")',
        'rtol must be a non-negative number such as "1e-5", got "-1"',
    ),
    "no_expected": (
        'tfjs_model_test(name = "no_expected", model = ":graph", inputs = "i.json")',
        "give expected (a JSON file of outputs) or reference_model (TF computes them)",
    ),
    "both_expected": (
        'tfjs_model_test(name = "both_expected", model = ":graph", inputs = "i.json", '
        'expected = "o.json", reference_model = "m.h5")',
        "give either expected or reference_model, not both",
    ),
    "bad_reference_format": (
        'tfjs_model_test(name = "bad_reference_format", model = ":chained", '
        'inputs = "i.json", reference_model = "m.h5")',
        'reference_format "tfjs_layers_model" cannot compute predictions; choose one of: '
        "keras, keras_keras, tf_saved_model",
    ),
    "reference_not_saved_model": (
        'tfjs_model_test(name = "reference_not_saved_model", model = ":graph", '
        'inputs = "i.json", reference_model = ":two_files")',
        "reference_model must be one file or a SavedModel file set with exactly one saved_model.pb, found 0",
    ),
    "relative_node": (
        'tfjs_model_test(name = "relative_node", model = ":graph", inputs = "i.json", '
        'expected = "o.json", node = "node")',
        'node must be an absolute path, got "node"',
    ),
}


def test_tfjs_model_test_bad_attributes_fail_at_analysis(env):
    first: Bazel = env["first"]
    pkg = first.workspace / "badtests"
    pkg.mkdir(exist_ok=True)
    for name in ("m.h5", "i.json", "o.json", "a.txt", "b.txt"):
        (pkg / name).write_bytes(b"not used: analysis fails first")
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_model_test")\n'
        + _MODEL_TEST_SUPPORT
        + 'filegroup(name = "two_files", srcs = ["a.txt", "b.txt"])\n'
        + "\n".join(rule for rule, _ in BAD_MODEL_TESTS.values())
        + "\n"
    )
    try:
        for name, (_, message) in sorted(BAD_MODEL_TESTS.items()):
            proc = first.run("build", "--nobuild", f"//badtests:{name}", check=False)
            assert proc.returncode != 0, name
            assert f"//badtests:{name}: {message}" in proc.stderr, (name, proc.stderr[-3000:])
    finally:
        shutil.rmtree(pkg)


# The tfjs_model macro's own fail()s (rules/defs.bzl) stop the package at loading, where
# an analysistest cannot see them: each gets its own package, built for real.
BAD_METADATA = {
    "metadata_not_a_dict": (
        'tfjs_model(name = "m", src = "m.h5", input_format = "keras", metadata = "info.json")',
        "m: metadata must be a dict of name -> JSON file label",
    ),
    "metadata_file_twice": (
        'tfjs_model(name = "m", src = "m.h5", input_format = "keras", '
        'metadata = {"a": "info.json", "b": "info.json"})',
        'm: metadata file info.json is used for both "a" and "b"; give each name its own file',
    ),
}


def test_tfjs_model_macro_bad_metadata_fails_at_loading(env):
    first: Bazel = env["first"]
    try:
        for pkg_name, (rule, message) in sorted(BAD_METADATA.items()):
            pkg = first.workspace / pkg_name
            pkg.mkdir(exist_ok=True)
            for name in ("m.h5", "info.json"):
                (pkg / name).write_bytes(b"not used: loading fails first")
            (pkg / "BUILD.bazel").write_text('load("//rules:defs.bzl", "tfjs_model")\n' + rule + "\n")
            proc = first.run("build", "--nobuild", f"//{pkg_name}:m", check=False)
            assert proc.returncode != 0, pkg_name
            assert message in proc.stderr, (pkg_name, proc.stderr[-3000:])
    finally:
        for pkg_name in BAD_METADATA:
            shutil.rmtree(first.workspace / pkg_name, ignore_errors=True)


def test_tfjs_model_test_fails_when_tfjs_disagrees(env):
    """The rule can fail: expected outputs off by 1e-3 fail at atol=1e-4 (on cpu and on
    webgl in Chromium, each reported) and pass at 1e-2."""
    first: Bazel = env["first"]
    pkg = first.workspace / "mismatch"
    pkg.mkdir(exist_ok=True)
    inputs = {"inputs": [{"shape": [1, 4], "dtype": "float32", "data": [0.5, -1.0, 2.0, 0.25]}]}
    (pkg / "i.json").write_text(json.dumps(inputs))
    shutil.copy(first.workspace / "examples" / "models" / "mlp_keras2.h5", pkg / "m.h5")
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_model_test")\n'
        'tfjs_model(name = "m", src = "m.h5", input_format = "keras")\n'
        'tfjs_model_test(name = "exp", model = ":m", inputs = "i.json", reference_model = "m.h5")\n'
    )
    try:
        first.run("build", "//mismatch:exp")
        expected = json.loads((first.workspace / "bazel-bin" / "mismatch" / "exp.expected.json").read_text())
        for out in expected["outputs"]:
            out["data"] = [v + 1e-3 for v in out["data"]]
        (pkg / "off.json").write_text(json.dumps(expected))
        with open(pkg / "BUILD.bazel", "a") as f:
            f.write(
                'tfjs_model_test(name = "strict", model = ":m", inputs = "i.json", expected = "off.json", '
                'atol = "1e-4", backends = ["cpu", "webgl"])\n'
                'tfjs_model_test(name = "loose", model = ":m", inputs = "i.json", expected = "off.json", '
                'atol = "1e-2")\n'
            )
        strict = first.run("test", "//mismatch:strict", check=False)
        assert strict.returncode == 3, strict.stderr[-3000:]  # 3: tests failed
        log = (first.workspace / "bazel-testlogs" / "mismatch" / "strict" / "test.log").read_text()
        assert "FAIL [cpu]" in log and "FAIL [webgl]" in log and "values outside atol=0.0001" in log, log
        assert "webgl backend, WebGL 2, float32 textures" in log, log
        first.run("test", "//mismatch:loose", "//mismatch:exp")
    finally:
        shutil.rmtree(pkg)


def test_bazel_test_targets_pass(env):
    first: Bazel = env["first"]
    proc = first.run(
        "test",
        f"--disk_cache={env['disk']}",
        "//tests/bazel/...",
        "//tests/analysis/...",
        "//rules/private:tfjs_convert_tool_test",
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# --- remote execution (REAPI): Bazel's own remote worker on 127.0.0.1 -----------------
#
# The worker runs in a mount namespace where the host's caches (the shared pip install),
# both checkouts, their output bases and the host's Python are covered by empty mounts:
# a conversion can only succeed with the inputs Bazel uploaded. The conversion tool's
# hermetic check (--define=tfjs_check_hermetic=1) also fails the action if any shared
# object or module it loaded lies outside the action's input tree.

REMOTE_TARGETS = ["//examples:mlp_layers", "//examples:mlp_graph"]
# Measured numbers, printed at the end (pytest -s) and written next to the logs.
REMOTE_NUMBERS: dict[str, object] = {}


@pytest.fixture(scope="module")
def worker(tmp_path_factory, env) -> Iterator[remote_worker.RemoteWorker]:
    why = remote_worker.missing_prerequisites()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("remote_worker")
    classes = remote_worker.compile_worker(REPO / ".cache" / "remote-worker")
    # The classes live in the hidden checkout: give the worker its own copy.
    shutil.copytree(classes, d / "classes")
    hide = [str(REPO), str(env["base"]), str(Path.home() / ".cache")]
    if os.environ.get("XDG_CACHE_HOME"):
        hide.append(os.environ["XDG_CACHE_HOME"])
    w = remote_worker.RemoteWorker(d / "work", d / "classes", hide)
    w.url = w.start()  # type: ignore[attr-defined]
    try:
        yield w
    finally:
        w.stop()
        shutil.rmtree(d / "work" / "cas", ignore_errors=True)  # 1.2 GB of uploaded inputs
        (env["base"] / "logs" / "remote-numbers.json").write_text(json.dumps(REMOTE_NUMBERS, indent=1))
        print("\nremote execution numbers:", json.dumps(REMOTE_NUMBERS, indent=1))


def remote_build(bazel: Bazel, w, name: str, *targets: str):
    """Build on the executor; return (spawns, uploads, seconds, new CAS blobs/bytes)."""
    grpc = bazel.logs / f"{name}.grpc"
    before = remote_worker.cas_blobs(w.cas)
    start = time.monotonic()
    spawns = bazel.build(
        "--config=remote",
        f"--remote_executor={w.url}",
        "--define=tfjs_check_hermetic=1",
        f"--experimental_remote_grpc_log={grpc}",
        *targets,
    )
    seconds = round(time.monotonic() - start, 1)
    new_blobs, new_bytes = remote_worker.cas_delta(before, remote_worker.cas_blobs(w.cas))
    up = grpc_log.uploads(grpc)
    REMOTE_NUMBERS[name] = {
        "seconds": seconds,
        "write_calls": up.write_calls,
        "bytes_sent": up.bytes_sent,
        "distinct_blobs_sent": len(up.blobs),
        "distinct_bytes_sent": up.blob_bytes,
        "new_cas_blobs": new_blobs,
        "new_cas_bytes": new_bytes,
    }
    return converts(spawns), up, (new_blobs, new_bytes)


def test_remote_execution_matches_local_outputs(env, worker):
    first: Bazel = env["first"]
    local = {t: v for t, v in outputs(first).items() if t in REMOTE_TARGETS}
    spawns, up, _ = remote_build(first, worker, "remote_cold", *REMOTE_TARGETS)
    assert sorted(target_of(s) for s in spawns) == sorted(REMOTE_TARGETS)
    assert {s["runner"] for s in spawns} == {"remote"}, [(target_of(s), s["runner"]) for s in spawns]
    assert not any(s["remoteCacheHit"] for s in spawns)
    # Started by the snapshot's loader, with the hermetic check on.
    for s in spawns:
        assert s["commandArgs"][0].endswith("/lib/ld-linux-x86-64.so.2"), s["commandArgs"][:3]
        assert "--check_hermetic" in s["commandArgs"], s["commandArgs"]
    remote = {t: v for t, v in outputs(first).items() if t in REMOTE_TARGETS}
    assert remote == local
    # The inputs went up: the 788 MB libtensorflow_cc among them (nothing came from the host).
    assert up.blob_bytes > 500_000_000, up.blob_bytes


# The other actions that run in the converter's runtime: a migration (tfjs_pb2json) and a
# tfjs_model_test's TF predictions (building the test target runs that action).
RUNTIME_ACTIONS = {
    "TfjsMigrate": ("//tests/fixtures/legacy:mlp_migrated", "tests/fixtures/legacy/mlp_migrated"),
    "TfjsPredict": ("//examples:mlp_graph_test", "examples/mlp_graph_test.expected.json"),
    "TfjsWebPackage": ("//examples:mlp_web", "examples/mlp_web"),
}


def test_remote_migration_and_prediction_match_local_outputs(env, worker):
    """tfjs_migrated_model, tfjs_model_test's TfjsPredict and tfjs_web_package run in the
    converter's runtime: on the executor, with the hermetic check on, they write what the
    local sandboxed build writes."""
    first: Bazel = env["first"]
    targets = [target for target, _ in RUNTIME_ACTIONS.values()]

    def built() -> dict[str, dict[str, bytes]]:
        found = {}
        for mnemonic, (_, path) in RUNTIME_ACTIONS.items():
            out = first.bin_dir() / path
            found[mnemonic] = tree_bytes(out) if out.is_dir() else {out.name: out.read_bytes()}
        return found

    local_spawns = [s for s in first.build(*targets) if s.get("mnemonic") in RUNTIME_ACTIONS]
    assert sorted((s["mnemonic"], s["runner"]) for s in local_spawns) == [
        ("TfjsMigrate", "linux-sandbox"),
        ("TfjsPredict", "linux-sandbox"),
        ("TfjsWebPackage", "linux-sandbox"),
    ]
    local = built()
    assert (
        "model.json" in local["TfjsMigrate"]
        and b'"outputs"' in local["TfjsPredict"]["mlp_graph_test.expected.json"]
        and "package.json" in local["TfjsWebPackage"]
    )
    remote_args = ["--config=remote", f"--remote_executor={worker.url}", "--define=tfjs_check_hermetic=1"]
    spawns = [s for s in first.build(*remote_args, *targets) if s.get("mnemonic") in RUNTIME_ACTIONS]
    assert sorted((s["mnemonic"], s["runner"]) for s in spawns) == [
        ("TfjsMigrate", "remote"),
        ("TfjsPredict", "remote"),
        ("TfjsWebPackage", "remote"),
    ]
    for s in spawns:
        args = s["commandArgs"]
        assert args[0].endswith("/lib/ld-linux-x86-64.so.2"), args[:3]
        entry = {
            "TfjsMigrate": "--entry=migrate",
            "TfjsPredict": "--entry=predict",
            "TfjsWebPackage": "--entry=web_package",
        }[s["mnemonic"]]
        assert entry in args and "--check_hermetic" in args, args[:14]
    assert built() == local


def test_remote_new_action_uploads_no_inputs_again(env, worker):
    """A new conversion on a warm executor sends only its own small blobs; the
    target's exec_properties reach the executor's platform (routing to big machines)."""
    first: Bazel = env["first"]
    pkg = first.workspace / "remote_props"
    pkg.mkdir(exist_ok=True)
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model")\n\n'
        'tfjs_model(\n    name = "big_executor",\n    src = "//examples:models/mlp_keras2.h5",\n'
        '    input_format = "keras",\n    exec_properties = {"rules_tfjs_memory": "4g"},\n)\n'
    )
    try:
        spawns, up, (new_blobs, _) = remote_build(
            first, worker, "remote_warm_new_action", "//remote_props:big_executor"
        )
        assert [s["runner"] for s in spawns] == ["remote"]
        props = {p["name"]: p["value"] for p in spawns[0]["platform"]["properties"]}
        assert props.get("rules_tfjs_memory") == "4g", spawns[0]["platform"]
        # Action, Command and the input tree's new Directory nodes only: a few kB.
        assert up.blob_bytes < 1_000_000, (up.blob_bytes, sorted(up.blobs)[:20])
        assert (first.bin_dir() / "remote_props" / "big_executor" / "model.json").is_file()
    finally:
        shutil.rmtree(pkg)


def test_remote_cache_hits_in_a_second_output_base_without_uploads(env, worker):
    first: Bazel = env["first"]
    second: Bazel = env["second"]
    expected = {t: v for t, v in outputs(first).items() if t in REMOTE_TARGETS}
    second.run("clean")
    spawns, up, (new_blobs, new_bytes) = remote_build(
        second, worker, "remote_second_output_base", *REMOTE_TARGETS
    )
    assert len(spawns) == len(REMOTE_TARGETS)
    assert all(s["remoteCacheHit"] for s in spawns), [(target_of(s), s["runner"]) for s in spawns]
    assert up.write_calls == 0 and up.bytes_sent == 0, up.calls
    assert (new_blobs, new_bytes) == (0, 0)
    assert {t: v for t, v in outputs(second).items() if t in REMOTE_TARGETS} == expected
