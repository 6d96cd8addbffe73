"""Run a converted model on any tfjs backend: cpu and wasm in Node, webgl in Chromium.

Browsers run tfjs on webgl by default, so a converted model is checked there too. One
``TfjsBackends`` per test session holds one Node process (``tfjs_runtime.TfjsRuntime``,
cpu and wasm) and, from the first webgl request on, one headless Chromium
(``tests/js/browser_harness.js`` -> ``rules/private/tfjs_browser.js``, the code
``tfjs_model_test`` runs): WebGL 2 on SwiftShader, a page on 127.0.0.1 that loads tfjs
4.22 from ``tests/js/node_modules`` and evaluates every later model in the same browser.
The page requires float32 textures (``WEBGL_RENDER_FLOAT32_CAPABLE``) and refuses to run
otherwise, so a webgl result is never a silent float16 one; ``run_model`` also checks
that the answer came from the backend asked for.

How to use it (e.g. a corpus test)::

    from tfjs_backends import BACKENDS  # the fixture tfjs_backends is in conftest.py
    import tolerances

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_case(tfjs_backends, backend, ...):
        outs = tfjs_backends.run_model(model_dir, "graph", {"input_1": x}, backend)
        tol, why = tolerances.backend_tolerance(ref32, ref64, backend)
        assert tolerances.max_diff(outs[0], ref32[0]) <= tol, why

Outside pytest (a generator script): ``with TfjsBackends() as tb: tb.run_model(...)``.

``inputs`` is a dict keyed by input name (graph models: signature keys or node names;
layers models: input layer names) or a list in the model's input order. Batch
freely: each array's first axis is the batch, and one call per (model, batch) is
cheapest; the model stays loaded on each side (a few models per side, least
recently used dropped; ``clear()`` frees them). Costs measured here: Chromium starts
in ~3 s, once; a model's first webgl run compiles its shaders on SwiftShader
(tf_keras MobileNetV2 at 64x64, batch 2: ~8 s graph, ~4 s layers), later runs of the
same model take 0.2-0.5 s. If the browser crashes or a request times out, the next
request starts a fresh one (``TfjsRuntime``'s rule).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from tfjs_runtime import JS_DIR, TfjsRuntime, require_js_runtime

BACKENDS = ("cpu", "wasm", "webgl")
# The backends a model checked on cpu is checked on next.
EXTRA_BACKENDS = tuple(b for b in BACKENDS if b != "cpu")
CHROMIUM = "/usr/bin/chromium"
BROWSER_HARNESS = JS_DIR / "browser_harness.js"
# A big model's first webgl run compiles many shaders on SwiftShader (a CPU rasterizer).
BROWSER_TIMEOUT_S = 600.0

Inputs = Mapping[str, np.ndarray] | Sequence[np.ndarray]


def missing_browser_reason(chromium: str = CHROMIUM) -> str | None:
    """Why webgl cannot run here, or None when it can."""
    if not os.access(chromium, os.X_OK):
        return f"{chromium} is not installed (apt-get install -y chromium)"
    return None


class TfjsBackends:
    """cpu/wasm in one Node process, webgl in one Chromium started on first use."""

    def __init__(self, node: TfjsRuntime | None = None, chromium: str = CHROMIUM):
        """``node``: share an existing Node runtime (the session's ``tfjs`` fixture)."""
        self._node = node
        self._owns_node = node is None
        self._chromium = chromium
        self._browser: TfjsRuntime | None = None

    def _runtime(self, backend: str) -> TfjsRuntime:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        if backend != "webgl":
            if self._node is None:
                self._node = TfjsRuntime()
            return self._node
        if self._browser is None:
            reason = missing_browser_reason(self._chromium)
            if reason:
                raise RuntimeError(f"webgl needs Chromium: {reason}")
            self._browser = TfjsRuntime(timeout_s=BROWSER_TIMEOUT_S, harness=BROWSER_HARNESS)
        return self._browser

    def run_model(
        self, model_dir: str | os.PathLike, kind: str, inputs: Inputs, backend: str
    ) -> list[np.ndarray]:
        """The model's outputs on ``backend``, in its output order.

        ``kind`` is "graph" or "layers"; raises ``tfjs_runtime.TfjsError`` when tfjs
        refuses the model or the inputs (its message), ``HarnessDied`` on a crash."""
        return self.run_answer(model_dir, kind, inputs, backend)["arrays"]

    def run_answer(self, model_dir: str | os.PathLike, kind: str, inputs: Inputs, backend: str) -> dict:
        """``run_model``'s whole answer: ``arrays`` and each output's ``name`` in ``outputs``."""
        answer = self._runtime(backend).run(model_dir, inputs, kind=kind, backend=backend)
        if answer.get("backend") != backend:
            raise RuntimeError(f"asked for {backend}, tfjs ran on {answer.get('backend')}")
        return answer

    def browser_info(self) -> dict:
        """What the webgl page runs on: tfjs version, backend, WebGL version,
        float32 capability (WEBGL_RENDER_FLOAT32_CAPABLE / _ENABLED) and renderer."""
        answer = self._runtime("webgl").request({"cmd": "info"})
        if not answer.get("ok"):
            raise RuntimeError(f"the webgl page is not usable: {answer.get('error')}")
        return answer["info"]

    def clear(self) -> None:
        """Dispose every loaded model on every started side (frees memory)."""
        for runtime in (self._node, self._browser):
            if runtime is not None:
                runtime.clear()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._owns_node and self._node is not None:
            self._node.close()
        self._node = None

    def __enter__(self) -> TfjsBackends:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_browser() -> None:
    """Skip locally when Chromium is missing; under CI (env CI set) fail instead."""
    require_js_runtime()
    reason = missing_browser_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the browser is required under CI: {reason}", pytrace=False)
    pytest.skip(reason)
