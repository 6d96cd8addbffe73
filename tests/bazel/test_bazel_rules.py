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
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
BAZEL = shutil.which("bazel")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(BAZEL is None, reason="bazel is not installed")

TARGETS = [
    "//examples:mlp_layers",
    "//examples:mlp_graph",
    "//examples:mlp_layers_uint8",
    "//examples:module_graph",
]
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "node_modules", "bazel-*", "__pycache__", ".pytest_cache",
    ".hypothesis", "build", "dist", "out", "test-artifacts", "user.bazelrc", "*.pyc",
)


# --- helpers -------------------------------------------------------------------------

def copy_workspace(dst: Path) -> Path:
    shutil.copytree(REPO, dst, ignore=_IGNORE, symlinks=True)
    return dst


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
        proc = subprocess.run(cmd, cwd=self.workspace, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
        return proc

    def build(self, *args: str, check: bool = True) -> List[dict]:
        """Build; return the spawns Bazel ran or took from a cache (execution log)."""
        self.calls += 1
        log = self.logs / f"{self.output_base.name}-exec-{self.calls}.json"
        self.run("build", f"--execution_log_json_file={log}", *args, check=check)
        return read_exec_log(log)

    def bin_dir(self) -> Path:
        return self.workspace / "bazel-bin"

    def shutdown(self) -> None:
        subprocess.run([BAZEL, f"--output_base={self.output_base}", "shutdown"],
                       cwd=self.workspace, capture_output=True, timeout=120)


def read_exec_log(path: Path) -> List[dict]:
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


def converts(spawns: List[dict]) -> List[dict]:
    return [s for s in spawns if s.get("mnemonic") == "TfjsConvert"]


def target_of(spawn: dict) -> str:
    return re.search(r"\((//[^)]+)\)$", spawn["progressMessage"]).group(1)


def tree_bytes(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def outputs(bazel: Bazel) -> Dict[str, Dict[str, bytes]]:
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
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(d / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    base = tmp_path_factory.mktemp("bazel")
    logs = base / "logs"
    logs.mkdir()
    first = Bazel(copy_workspace(base / "a" / "rules_tfjs"), base / "ob1", logs)
    second = Bazel(copy_workspace(base / "elsewhere" / "deeper" / "rules_tfjs"), base / "ob2", logs)
    state = {"first": first, "second": second, "remote": cache_server,
             "disk": base / "disk_cache"}
    try:
        yield state
    finally:
        first.shutdown()
        second.shutdown()


def caches(env) -> List[str]:
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
    handled: Dict[str, int] = {}
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


BAD_TARGETS = {
    "shard_zero": ('tfjs_model(name = "shard_zero", src = "m.h5", input_format = "keras", '
                   'weight_shard_size_bytes = 0)',
                   "weight_shard_size_bytes must be a positive integer, got 0"),
    "bad_dtype": ('tfjs_quantized_model(name = "bad_dtype", src = "m.h5", input_format = "keras", '
                  'dtype = "int4")',
                  "unknown quantization dtype \"int4\"; choose one of: float16, uint8, uint16"),
    "bad_pair": ('tfjs_model(name = "bad_pair", src = "m.h5", input_format = "tf_frozen_model", '
                 'output_format = "tfjs_layers_model", output_node_names = ["y"])',
                 "unsupported input_format/output_format pair: tf_frozen_model -> tfjs_layers_model"),
    "bad_format": ('tfjs_model(name = "bad_format", src = "m.h5", input_format = "onnx")',
                   "unknown input_format \"onnx\""),
    "frozen_without_nodes": ('tfjs_model(name = "frozen_without_nodes", src = "m.h5", '
                             'input_format = "tf_frozen_model")',
                             "output_node_names is required for input_format \"tf_frozen_model\""),
}


def test_bad_attributes_fail_at_analysis_with_a_clear_message(env):
    first: Bazel = env["first"]
    pkg = first.workspace / "badattrs"
    pkg.mkdir(exist_ok=True)
    (pkg / "m.h5").write_bytes(b"not used: analysis fails first")
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_quantized_model")\n\n'
        + "\n".join(rule for rule, _ in BAD_TARGETS.values()) + "\n")
    try:
        for name, (_, message) in sorted(BAD_TARGETS.items()):
            proc = first.run("build", "--nobuild", f"//badattrs:{name}", check=False)
            assert proc.returncode != 0, name
            assert f"//badattrs:{name}: {message}" in proc.stderr, (name, proc.stderr[-3000:])
    finally:
        shutil.rmtree(pkg)


# tfjs_model_test: one target per fail() in rules/private/tfjs_model_test.bzl.
_MODEL_TEST_SUPPORT = """
tfjs_model(name = "graph", src = "m.h5", input_format = "keras", output_format = "tfjs_graph_model")
tfjs_model(name = "chained", src = ":graph_layers", input_format = "tfjs_layers_model",
           output_format = "tfjs_graph_model")
tfjs_model(name = "graph_layers", src = "m.h5", input_format = "keras")
tfjs_model(name = "to_h5", src = ":graph_layers", input_format = "tfjs_layers_model", output_format = "keras")
"""
BAD_MODEL_TESTS = {
    "not_tfjs": ('tfjs_model_test(name = "not_tfjs", model = ":to_h5", inputs = "i.json", expected = "o.json")',
                 "model //badtests:to_h5 is a keras; tfjs_model_test runs tfjs_graph_model and "
                 "tfjs_layers_model outputs"),
    "bad_atol": ('tfjs_model_test(name = "bad_atol", model = ":graph", inputs = "i.json", expected = "o.json", '
                 'atol = "tiny")',
                 'atol must be a non-negative number such as "1e-5", got "tiny"'),
    "bad_rtol": ('tfjs_model_test(name = "bad_rtol", model = ":graph", inputs = "i.json", expected = "o.json", '
                 'rtol = "-1")',
                 'rtol must be a non-negative number such as "1e-5", got "-1"'),
    "no_expected": ('tfjs_model_test(name = "no_expected", model = ":graph", inputs = "i.json")',
                    "give expected (a JSON file of outputs) or reference_model (TF computes them)"),
    "both_expected": ('tfjs_model_test(name = "both_expected", model = ":graph", inputs = "i.json", '
                      'expected = "o.json", reference_model = "m.h5")',
                      "give either expected or reference_model, not both"),
    "bad_reference_format": ('tfjs_model_test(name = "bad_reference_format", model = ":chained", '
                             'inputs = "i.json", reference_model = "m.h5")',
                             'reference_format "tfjs_layers_model" cannot compute predictions; choose one of: '
                             "keras, keras_keras, tf_saved_model"),
    "reference_not_saved_model": ('tfjs_model_test(name = "reference_not_saved_model", model = ":graph", '
                                  'inputs = "i.json", reference_model = ":two_files")',
                                  "reference_model must be one file or a SavedModel file set with exactly one "
                                  "saved_model.pb, found 0"),
    "relative_node": ('tfjs_model_test(name = "relative_node", model = ":graph", inputs = "i.json", '
                      'expected = "o.json", node = "node")',
                      'node must be an absolute path, got "node"'),
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
        + "\n".join(rule for rule, _ in BAD_MODEL_TESTS.values()) + "\n")
    try:
        for name, (_, message) in sorted(BAD_MODEL_TESTS.items()):
            proc = first.run("build", "--nobuild", f"//badtests:{name}", check=False)
            assert proc.returncode != 0, name
            assert f"//badtests:{name}: {message}" in proc.stderr, (name, proc.stderr[-3000:])
    finally:
        shutil.rmtree(pkg)


def test_tfjs_model_test_fails_when_tfjs_disagrees(env):
    """The rule can fail: expected outputs off by 1e-3 fail at atol=1e-4 and pass at 1e-2."""
    first: Bazel = env["first"]
    pkg = first.workspace / "mismatch"
    pkg.mkdir(exist_ok=True)
    inputs = {"inputs": [{"shape": [1, 4], "dtype": "float32", "data": [0.5, -1.0, 2.0, 0.25]}]}
    (pkg / "i.json").write_text(json.dumps(inputs))
    shutil.copy(first.workspace / "examples" / "models" / "mlp_keras2.h5", pkg / "m.h5")
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "tfjs_model", "tfjs_model_test")\n'
        'tfjs_model(name = "m", src = "m.h5", input_format = "keras")\n'
        'tfjs_model_test(name = "exp", model = ":m", inputs = "i.json", reference_model = "m.h5")\n')
    try:
        first.run("build", "//mismatch:exp")
        expected = json.loads((first.workspace / "bazel-bin" / "mismatch" / "exp.expected.json").read_text())
        for out in expected["outputs"]:
            out["data"] = [v + 1e-3 for v in out["data"]]
        (pkg / "off.json").write_text(json.dumps(expected))
        with open(pkg / "BUILD.bazel", "a") as f:
            f.write('tfjs_model_test(name = "strict", model = ":m", inputs = "i.json", expected = "off.json", '
                    'atol = "1e-4")\n'
                    'tfjs_model_test(name = "loose", model = ":m", inputs = "i.json", expected = "off.json", '
                    'atol = "1e-2")\n')
        strict = first.run("test", "//mismatch:strict", check=False)
        assert strict.returncode == 3, strict.stderr[-3000:]  # 3: tests failed
        log = (first.workspace / "bazel-testlogs" / "mismatch" / "strict" / "test.log").read_text()
        assert "FAIL" in log and "values outside atol=0.0001" in log, log
        first.run("test", "//mismatch:loose", "//mismatch:exp")
    finally:
        shutil.rmtree(pkg)


def test_bazel_test_targets_pass(env):
    first: Bazel = env["first"]
    proc = first.run("test", f"--disk_cache={env['disk']}", "//tests/bazel/...",
                     "//rules/private:tfjs_convert_tool_test", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
