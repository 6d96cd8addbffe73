"""The coverage corpus: every case converts, loads, runs and matches in tfjs 4.22 -- or is refused.

For each case of ``coverage_corpus`` and each path (Keras 2 ``.h5`` / Keras 3 ``.keras``
-> ``tfjs_layers_model`` / ``tfjs_graph_model``; ``tf.Module`` SavedModels -> graph) the
invariant is:

(a) the conversion succeeds (with or without a warning), tfjs 4.22 loads and runs the
    model on the Node cpu backend, and its outputs match TensorFlow's within the case's
    tolerance; the wasm backend is run too and must match as well when it has the kernels
    (unless the pair is a listed tfjs-backend-wasm bug, ``KNOWN_WASM_BUGS``: cpu matches,
    wasm fails or differs -> outcome "wasm-bug");
(b) or the conversion is refused with a one-line ``ConversionError``.

Anything else -- success at conversion then a load/run error or a mismatch, a traceback
-- fails the test unless the (case, path) is listed in ``KNOWN_FAILURES``.

Tolerance (per case, from an independent bound, not tuned until green): ``tolerances``
-- 4x the gap between TF's float32 run and the same model rebuilt in float64, never less
than 8 float32 ulps of the output scale. Integer and string outputs must be equal.

Results go to ``test-artifacts/coverage-results.json``; ``tools/coverage_table.py`` turns
them into ``docs/coverage.md`` and the summary in ``docs/testing.md``, and ``test_table_is_current``
fails when the outcomes of this run differ from the committed ``docs/coverage.json``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import coverage_corpus as cc
import numpy as np
import pytest
from checkout import load_script
from tfjs_runtime import TfjsError
from tolerances import max_diff, tolerance

from tfjsconv import api
from tfjsconv.errors import ConversionError
from tfjsconv.options import ConversionOptions

pytestmark = [pytest.mark.slow, pytest.mark.tfjs]

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "test-artifacts" / "coverage-results.json"
COMMITTED = REPO_ROOT / "docs" / "coverage.json"


# Known failures: reason -> "case id|path" pairs that convert but whose model tfjs 4.22 then
# refuses, cannot run, or runs wrongly. Empty: every such case found so far is fixed or
# refused at conversion time. A new one may be listed here only with its reason while it
# is being fixed (a listed pair that passes fails the test, so the list cannot go stale);
# regenerate the table (tools/coverage_table.py) after any change of outcome.
KNOWN_FAILURES_BY_REASON: dict[str, list[str]] = {}
# tfjs-backend-wasm bugs: reason -> "case id|path" pairs whose model.json runs on tfjs's cpu
# backend and matches TF, while the wasm backend fails or differs on the same model and
# inputs -- a runtime bug of one backend, not a conversion failure. Such a pair gets the
# outcome "wasm-bug" (the table counts it as matched, with a note); every other pair must
# pass on wasm too. A listed pair whose wasm run matches (or whose cpu run fails) fails the
# test, so the list cannot go stale.
KNOWN_WASM_BUGS_BY_REASON: dict[str, list[str]] = {
    "tfjs-backend-wasm 4.22 Conv3DTranspose: the cpu backend matches TF, wasm differs": [
        "layer/Conv3DTranspose|k2:layers",
        "layer/Conv3DTranspose|k3:layers",
    ],
}
KNOWN_WASM_BUGS: dict[tuple[str, str], str] = {
    (key.split("|")[0], key.split("|")[1]): reason
    for reason, keys in KNOWN_WASM_BUGS_BY_REASON.items()
    for key in keys
}
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    (key.split("|")[0], key.split("|")[1]): reason
    for reason, keys in KNOWN_FAILURES_BY_REASON.items()
    for key in keys
}

CASES = cc.all_cases()


# --- the run -----------------------------------------------------------------------


class _Warnings(logging.Handler):
    """Collects the converter's WARNING records (``tfjsconv.*`` loggers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _convert(src: str, out: str, input_format: str, output_format: str) -> tuple[str, str, float]:
    """-> (status, message, seconds); status is "ok", "warned", "refused" or "crash"."""
    handler = _Warnings()
    logger = logging.getLogger("tfjsconv")
    logger.addHandler(handler)
    t0 = time.perf_counter()
    try:
        api.convert(src, out, ConversionOptions(input_format=input_format, output_format=output_format))
    except ConversionError as exc:
        return "refused", str(exc), time.perf_counter() - t0
    except Exception:  # noqa: BLE001 - a traceback is a converter bug: recorded, fails the test
        return "crash", traceback.format_exc(limit=-3), time.perf_counter() - t0
    finally:
        logger.removeHandler(handler)
    secs = time.perf_counter() - t0
    if handler.messages:
        return "warned", " | ".join(handler.messages), secs
    return "ok", "", secs


def _pair(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> list[int] | None:
    """Index into ``got`` for each ``want`` output.

    Layers models keep Keras's output order. Graph models order outputs by signature key,
    which need not be Keras's order, so each reference output is paired with the
    same-shaped tfjs output closest to it (each used once): a wrong value still fails.
    """
    if len(got) != len(want):
        return None
    if all(np.shape(g) == np.shape(w) for g, w in zip(got, want, strict=False)):
        if len(got) == 1:
            return [0]
    free = list(range(len(got)))
    order = []
    for w in want:
        same = [i for i in free if np.shape(got[i]) == np.shape(w)]
        if not same:
            return None
        best = min(same, key=lambda i: max_diff(got[i], w))
        order.append(best)
        free.remove(best)
    return order


def _run_tfjs(
    tfjs: Any, model_dir: str, kind: str, backend: str, inputs: Any, ref32: Sequence[np.ndarray]
) -> tuple[float | None, str]:
    """-> (max diff or None, error message)."""
    try:
        got = tfjs.predict(model_dir, inputs, kind=kind, backend=backend)
    except TfjsError as exc:
        return None, exc.error.splitlines()[0][:300]
    order = _pair(got, ref32)
    if order is None:
        return None, (
            f"outputs differ in number/shape: tfjs {[np.shape(g) for g in got]} "
            f"vs TF {[np.shape(r) for r in ref32]}"
        )
    return max(max_diff(got[i], r) for i, r in zip(order, ref32, strict=False)), ""


# Errors that mean "the wasm backend has no kernel for this op": not a converter problem.
_WASM_UNSUPPORTED = ("not registered", "not yet implemented", "only supports", "not supported")


def _check_path(
    tfjs: Any,
    src: str,
    input_format: str,
    output_format: str,
    work: str,
    inputs: Any,
    ref32: Sequence[np.ndarray],
    tol: float,
    wasm_bug: str | None = None,
) -> dict[str, Any]:
    """Convert, run on cpu then wasm, compare. ``wasm_bug``: the KNOWN_WASM_BUGS reason
    for this pair, which turns a wasm-only failure into the "wasm-bug" outcome."""
    out = os.path.join(work, output_format)
    status, message, secs = _convert(src, out, input_format, output_format)
    entry: dict[str, Any] = {"convert_s": round(secs, 3)}
    if status == "refused":
        if len(message.strip().splitlines()) != 1:
            return dict(
                entry, outcome="fail", message="refusal is not one line: " + " / ".join(message.splitlines())
            )
        return dict(entry, outcome="refused", message=message.strip())
    if status == "crash":
        return dict(entry, outcome="fail", message="converter traceback: " + message)
    kind = "layers" if output_format == "tfjs_layers_model" else "graph"
    diff, error = _run_tfjs(tfjs, out, kind, "cpu", inputs, ref32)
    entry["warning"] = message
    if diff is None:
        return dict(
            entry,
            outcome="fail",
            message=f"converted{' with a warning' if message else ''}, then tfjs cpu failed: {error}",
        )
    entry["max_diff"] = diff
    if diff > tol:
        return dict(entry, outcome="fail", message=f"tfjs cpu differs from TF by {diff:.3g} > tol {tol:.3g}")
    wdiff, werror = _run_tfjs(tfjs, out, kind, "wasm", inputs, ref32)
    if (wdiff is None and not any(s in werror for s in _WASM_UNSUPPORTED)) or (
        wdiff is not None and wdiff > tol
    ):
        # One wasm crash ("memory access out of bounds") leaves the wasm heap of the shared
        # harness corrupted for every later model: retry in a fresh Node process, so a
        # failure is this model's own.
        tfjs.close()
        wdiff, werror = _run_tfjs(tfjs, out, kind, "wasm", inputs, ref32)
        entry["wasm_retried_in_fresh_process"] = True
    wasm_failure = ""
    if wdiff is None:
        if not any(s in werror for s in _WASM_UNSUPPORTED):
            wasm_failure = f"runs on cpu, wasm failed: {werror}"
        else:
            entry["wasm"] = "no kernel: " + werror
    elif wdiff > tol:
        wasm_failure = f"tfjs wasm differs from TF by {wdiff:.3g} > tol {tol:.3g}"
    else:
        entry["wasm_max_diff"] = wdiff
    if wasm_failure:
        if wasm_bug is None:
            return dict(entry, outcome="fail", message=wasm_failure)
        shutil.rmtree(out, ignore_errors=True)
        return dict(entry, outcome="wasm-bug", wasm_bug=wasm_bug, message=wasm_failure)
    shutil.rmtree(out, ignore_errors=True)
    return dict(entry, outcome="warned" if message else "ok")


def run_keras_case(case: cc.Case, tfjs: Any, work: str) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    inputs = case.inputs()
    for flavor, (_suffix, input_format) in cc.FLAVORS.items():
        K = cc.keras_module(flavor)
        K.backend.clear_session()
        cc.seed(flavor)
        try:
            model = case.build(K)
            cc.perturb_weights(model)
            cc.apply_constraints(model)
            ref32 = cc.predict(model, inputs)
            src = cc.save_keras(flavor, model, work, case.id)
        except Exception as exc:  # noqa: BLE001 - this Keras cannot build/run/save the case
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
            for target in ("layers", "graph"):
                results[f"{flavor}:{target}"] = {"outcome": "n/a", "message": f"Keras cannot build it: {why}"}
            continue
        ref64 = cc.float64_predictions(K, model, inputs)
        tol, why = tolerance(ref32, ref64)
        for target, output_format in (("layers", "tfjs_layers_model"), ("graph", "tfjs_graph_model")):
            entry = _check_path(
                tfjs,
                src,
                input_format,
                output_format,
                os.path.join(work, flavor),
                inputs,
                ref32,
                tol,
                KNOWN_WASM_BUGS.get((case.id, f"{flavor}:{target}")),
            )
            results[f"{flavor}:{target}"] = dict(entry, tol=tol, bound=why)
    return results


def run_graph_case(case: cc.Case, tfjs: Any, work: str) -> dict[str, dict[str, Any]]:
    inputs = case.inputs()
    sm = os.path.join(work, "saved_model")
    case.saved_model(sm)
    names, ref32 = cc.saved_model_predictions(sm, inputs)
    ref64 = case.float64(inputs) if case.float64 else None
    tol, why = tolerance(ref32, ref64)
    feed = dict(zip(names, inputs, strict=False))
    entry = _check_path(
        tfjs,
        sm,
        "tf_saved_model",
        "tfjs_graph_model",
        work,
        feed,
        ref32,
        tol,
        KNOWN_WASM_BUGS.get((case.id, cc.SM_PATH)),
    )
    return {cc.SM_PATH: dict(entry, tol=tol, bound=why)}


def _coverage_table() -> Any:
    """tools/coverage_table.py, the table generator (a script, not a package)."""
    return load_script("tools/coverage_table.py")


# --- pytest ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus_results() -> Iterator[dict[str, Any]]:
    """case id -> path -> result; written to ``RESULTS`` at the end of the session."""
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    yield results
    if not results:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "complete": sorted(results) == sorted(c.id for c in CASES),
        "seconds": round(time.perf_counter() - t0, 1),
        "known_failures": {f"{c}|{p}": r for (c, p), r in sorted(KNOWN_FAILURES.items())},
        "cases": {k: results[k] for k in sorted(results)},
    }
    RESULTS.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _failures(case_id: str, paths: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for path, res in sorted(paths.items()):
        known = KNOWN_FAILURES.get((case_id, path))
        if res["outcome"] == "fail" and known is None:
            problems.append(f"{path}: {res['message']}")
        elif res["outcome"] != "fail" and known is not None:
            problems.append(
                f"{path}: listed in KNOWN_FAILURES ({known}) but now {res['outcome']}: delete the entry"
            )
        if res["outcome"] == "fail" and known is not None:
            res["known"] = known
        wasm_bug = KNOWN_WASM_BUGS.get((case_id, path))
        if wasm_bug is not None and res["outcome"] != "wasm-bug":
            problems.append(
                f"{path}: listed in KNOWN_WASM_BUGS ({wasm_bug}) but now {res['outcome']}: delete the entry"
            )
    return problems


def test_known_failures_name_real_cases() -> None:
    ids = {c.id: c.paths for c in CASES}
    for case_id, path in KNOWN_FAILURES:
        assert path in ids.get(case_id, ()), f"KNOWN_FAILURES names no corpus case/path: {case_id} {path}"
    for case_id, path in KNOWN_WASM_BUGS:
        assert path in ids.get(case_id, ()), f"KNOWN_WASM_BUGS names no corpus case/path: {case_id} {path}"
        assert (case_id, path) not in KNOWN_FAILURES, f"{case_id} {path} is in both lists"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: cc.Case, tfjs: Any, corpus_results: dict[str, Any], tmp_path: Path) -> None:
    if case.build is not None:
        paths = run_keras_case(case, tfjs, str(tmp_path))
    else:
        paths = run_graph_case(case, tfjs, str(tmp_path))
    for res in paths.values():  # no temp paths in the committed table
        for key in ("message", "warning"):
            if res.get(key):
                res[key] = res[key].replace(str(tmp_path) + os.sep, "").replace(str(tmp_path), ".")
    problems = _failures(case.id, paths)
    corpus_results[case.id] = {"note": case.note, "paths": paths} if case.note else {"paths": paths}
    assert not problems, f"{case.id}:\n  " + "\n  ".join(problems)


def test_table_is_current(corpus_results: dict[str, Any]) -> None:
    """The committed table (docs/coverage.json -> docs/testing.md, docs/coverage.md) shows this run's outcomes."""
    if sorted(corpus_results) != sorted(c.id for c in CASES):
        pytest.skip("only part of the corpus ran")
    coverage_table = _coverage_table()
    committed = json.loads(COMMITTED.read_text()) if COMMITTED.exists() else {"cases": {}}
    now = coverage_table.outcomes({"cases": corpus_results})
    before = coverage_table.outcomes(committed)
    changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
    assert not changed, (
        f"{len(changed)} corpus outcomes differ from docs/coverage.json, e.g. "
        + "; ".join(f"{k}: {before.get(k)} -> {now.get(k)}" for k in changed[:5])
        + ". Regenerate: .venv/bin/python tools/coverage_table.py --update test-artifacts/coverage-results.json"
    )
