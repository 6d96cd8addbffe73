"""The persistent worker restarts itself when the converter's sources change.

Bazel 4.2.3 keeps a worker across builds even when the converter it imported has
changed; without the restart the worker would write new action keys' outputs with old
code. A stand-in ``tfjsconv`` package (its ``cli.main`` prints a version) takes the
converter's place, so the test needs no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "rules" / "private" / "tfjs_convert_tool.py"

CLI = """
def main(argv, stdout, stderr):
    stdout.write("version {v} pid %d\\n" % __import__("os").getpid())
    return 0
"""


def _write_converter(root: Path, version: int) -> None:
    pkg = root / "tfjsconv"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def report_internal_error(name, buf):\n    return 70\n")
    (pkg / "cli.py").write_text(CLI.replace("{v}", str(version)))


def _ask(proc: subprocess.Popen, request_id: int) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"arguments": [], "requestId": request_id, "inputs": []}).encode())
    proc.stdin.flush()
    response = json.loads(proc.stdout.readline())
    assert response["requestId"] == request_id and response["exitCode"] == 0, response
    return response["output"]


def test_worker_restarts_on_changed_sources_and_answers_the_same_request(tmp_path: Path):
    root = tmp_path / "converter"
    _write_converter(root, 1)
    proc = subprocess.Popen(
        [sys.executable, str(TOOL), f"--sys_path={root}", "--persistent_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        first = _ask(proc, 1)
        assert _ask(proc, 2) == first  # unchanged sources: same process, same code
        _write_converter(root, 2)
        third = _ask(proc, 3)
        assert third.startswith("version 2"), third
        # exec keeps the PID: Bazel sees the same worker answer.
        assert third.split("pid")[1] == first.split("pid")[1]
        assert first.startswith("version 1")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "converter sources changed, restarting" in stderr
