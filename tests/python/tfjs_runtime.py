"""Python side of the real-runtime check: talks to ``tests/js/harness.js``.

Converted models are only worth something if ``@tensorflow/tfjs`` itself loads and runs
them, so tests send inputs to one long-lived Node process (starting Node and importing
tfjs costs ~1 s) and get the runtime's outputs back as numpy arrays. Arrays travel as
base64 little-endian bytes because JSON number lists are slow and lose float32 bits.
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

JS_DIR = Path(__file__).resolve().parent.parent / "js"
HARNESS = JS_DIR / "harness.js"
NODE_MODULES = JS_DIR / "node_modules"
REQUEST_TIMEOUT_S = 120.0

# numpy dtype -> tfjs dtype for inputs. Wider types are narrowed the way the converter
# narrows weights, because tfjs has no float64/int64 tensors.
_TO_TFJS = {
    np.dtype("float32"): "float32",
    np.dtype("float64"): "float32",
    np.dtype("float16"): "float32",
    np.dtype("int32"): "int32",
    np.dtype("int64"): "int32",
    np.dtype("int16"): "int32",
    np.dtype("int8"): "int32",
    np.dtype("uint8"): "int32",
    np.dtype("uint16"): "int32",
    np.dtype("bool"): "bool",
    np.dtype("complex64"): "complex64",
    np.dtype("complex128"): "complex64",
}
_FROM_TFJS = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
    "complex64": np.dtype("<c8"),
}

Inputs = Sequence[np.ndarray] | Mapping[str, np.ndarray] | np.ndarray


class TfjsError(RuntimeError):
    """tfjs refused the model or the inputs; ``.error`` is the runtime's message."""

    def __init__(self, error: str, model: str):
        super().__init__(f"tfjs failed on {model}: {error}")
        self.error = error


class HarnessDied(RuntimeError):
    """The Node process exited or stopped answering; carries its stderr tail."""


def node_modules_present() -> bool:
    return (NODE_MODULES / "@tensorflow" / "tfjs" / "package.json").is_file()


def missing_runtime_reason() -> str | None:
    """Why the JS side cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not node_modules_present():
        return f"{NODE_MODULES} is missing (run: npm ci --prefix tests/js)"
    return None


def require_js_runtime() -> None:
    """Skip locally when the JS side is not installed; under CI (env CI set) fail instead.

    A CI run that silently skips every runtime check would prove nothing.
    """
    import pytest

    reason = missing_runtime_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the tfjs runtime is required under CI: {reason}", pytrace=False)
    pytest.skip(f"tfjs runtime not available: {reason}")


def encode_input(array, name: str | None = None) -> dict:
    """One harness input: dtype-narrowed, little-endian, base64."""
    arr = np.asarray(array)
    spec: dict[str, object] = {"shape": list(arr.shape)}
    if name is not None:
        spec["name"] = name
    if arr.dtype.kind in "USO":
        spec["dtype"] = "string"
        spec["strings"] = [
            base64.b64encode(v if isinstance(v, bytes) else str(v).encode("utf-8")).decode("ascii")
            for v in arr.reshape(-1).tolist()
        ]
        return spec
    tfjs_dtype = _TO_TFJS.get(arr.dtype)
    if tfjs_dtype is None:
        raise TypeError(f"no tfjs dtype for numpy dtype {arr.dtype}")
    if arr.dtype.kind in "iu" and arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
        raise ValueError(f"input {name or ''} does not fit in int32")
    wire = arr.astype(_FROM_TFJS[tfjs_dtype], copy=False)
    spec["dtype"] = tfjs_dtype
    spec["b64"] = binascii.b2a_base64(np.ascontiguousarray(wire).data, newline=False).decode("ascii")
    return spec


def decode_output(out: Mapping) -> np.ndarray:
    shape = tuple(out["shape"])
    if out["dtype"] == "string":
        values = [base64.b64decode(s) for s in out["strings"]]
        return np.array(values, dtype=object).reshape(shape)
    dtype = _FROM_TFJS[out["dtype"]]
    arr = np.frombuffer(binascii.a2b_base64(out["b64"]), dtype=dtype).reshape(shape)
    if out["dtype"] == "bool":
        return arr.astype(bool)
    return arr.astype(dtype.newbyteorder("="), copy=True)


class TfjsRuntime:
    """One Node process running tfjs 4.22; requests are answered one at a time.

    If Node dies or a request times out, the next request starts a fresh process, so
    one bad model cannot wedge the rest of the session.
    """

    def __init__(
        self, node: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S, harness: Path = HARNESS
    ):
        """``harness``: a script speaking harness.js's protocol (browser_harness.js: webgl)."""
        self._node = node or shutil.which("node")
        self._harness = harness
        if self._node is None:
            raise HarnessDied("node is not on PATH; the tfjs runtime tests need Node 20")
        if not node_modules_present():
            raise HarnessDied(f"{NODE_MODULES} is missing; run: npm ci --prefix {JS_DIR.as_posix()}")
        self._timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._start()

    # -- process management -------------------------------------------------------

    def _start(self) -> None:
        self._lines = queue.Queue()
        self._stderr = collections.deque(maxlen=200)
        self._proc = subprocess.Popen(
            [self._node, str(self._harness)],
            cwd=str(JS_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        threading.Thread(target=self._pump_stdout, args=(self._proc, self._lines), daemon=True).start()
        self._stderr_thread = threading.Thread(
            target=self._pump_stderr, args=(self._proc, self._stderr), daemon=True
        )
        self._stderr_thread.start()

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen, lines: queue.Queue[str | None]) -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # EOF: the process is gone

    @staticmethod
    def _pump_stderr(proc: subprocess.Popen, sink: collections.deque[str]) -> None:
        for line in proc.stderr:
            sink.append(line.rstrip("\n"))

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            self._kill()

    def __enter__(self) -> TfjsRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------

    def request(self, req: dict) -> dict:
        """Send one raw request and return the raw answer (``ok`` may be false)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill()
                self._start()
            req = dict(req, id=next(self._ids))
            try:
                self._proc.stdin.write(json.dumps(req) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                self._die(f"could not write to the tfjs harness ({exc})")
            while True:
                try:
                    line = self._lines.get(timeout=self._timeout_s)
                except queue.Empty:
                    self._die(f"tfjs harness gave no answer within {self._timeout_s:.0f} s")
                if line is None:
                    self._proc.wait()
                    self._die(f"tfjs harness exited with code {self._proc.returncode}")
                try:
                    answer = json.loads(line)
                except json.JSONDecodeError:
                    self._stderr.append(f"[stdout] {line.rstrip()}")
                    continue
                if answer.get("id") in (req["id"], None):
                    return answer

    def _die(self, what: str) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._stderr_thread.join(timeout=2)  # let the last stderr lines arrive
        self._proc = None
        raise HarnessDied(f"{what}; harness stderr:\n{self.stderr_tail() or '(empty)'}")

    def run(
        self,
        model_dir: str | os.PathLike,
        inputs: Inputs,
        *,
        kind: str,
        backend: str = "cpu",
        outputs: Sequence[str] | None = None,
        timeit: int = 0,
    ) -> dict:
        """Run once (or ``timeit`` times); returns the raw answer with decoded arrays."""
        model_json = Path(model_dir)
        if model_json.is_dir() or model_json.suffix != ".json":
            model_json = model_json / "model.json"
        model_json = model_json.resolve()
        if isinstance(inputs, np.ndarray):
            specs = [encode_input(inputs)]
        elif isinstance(inputs, Mapping):
            specs = [encode_input(inputs[k], k) for k in sorted(inputs)]
        else:
            specs = [encode_input(a) for a in inputs]
        req = {"model": str(model_json), "kind": kind, "backend": backend, "inputs": specs}
        if outputs is not None:
            req["outputs"] = list(outputs)
        if timeit:
            req["timeit"] = int(timeit)
        answer = self.request(req)
        if not answer.get("ok"):
            raise TfjsError(str(answer.get("error")), str(model_json))
        answer["arrays"] = [decode_output(o) for o in answer["outputs"]]
        return answer

    def predict(
        self,
        model_dir: str | os.PathLike,
        inputs: Inputs,
        *,
        kind: str,
        backend: str = "cpu",
        outputs: Sequence[str] | None = None,
    ) -> list[np.ndarray]:
        """Outputs of the model in the real tfjs runtime, in the model's output order.

        ``inputs`` is a list of arrays (model input order) or a dict keyed by input
        name (graph models: signature keys or node names; layers: input layer names).
        """
        return self.run(model_dir, inputs, kind=kind, backend=backend, outputs=outputs)["arrays"]

    def output_names(self, model_dir, inputs: Inputs, *, kind: str, backend: str = "cpu") -> list[str]:
        """Names the runtime gives the outputs (signature keys or node names)."""
        return [o["name"] for o in self.run(model_dir, inputs, kind=kind, backend=backend)["outputs"]]

    def memory(self) -> dict:
        """``tf.memory()`` of the current backend (numTensors, numBytes...), for leak checks."""
        answer = self.request({"cmd": "memory"})
        if not answer.get("ok"):
            raise TfjsError(str(answer.get("error")), "(memory)")
        return answer["memory"]

    def clear(self) -> None:
        """Dispose every cached model (frees memory between big-model tests)."""
        self.request({"cmd": "clear"})

    def benchmark(
        self, model_dir, inputs: Inputs, *, kind: str, backend: str = "cpu", runs: int = 20
    ) -> float:
        """Median inference time in ms (after one warm-up run), outputs read back included."""
        return float(self.run(model_dir, inputs, kind=kind, backend=backend, timeit=runs)["timeit_ms"])


def _main(argv: Sequence[str]) -> int:
    """Tiny CLI for poking at a model: ``python tfjs_runtime.py DIR graph|layers SHAPE``."""
    model_dir, kind = argv[0], argv[1]
    shape = [int(s) for s in argv[2].split(",")] if len(argv) > 2 else [1]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with TfjsRuntime() as rt:
        for out in rt.predict(model_dir, [x], kind=kind):
            print(out.shape, out.dtype, out.reshape(-1)[:8])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
