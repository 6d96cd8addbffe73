"""The reach corpus in CI: the committed table lists every constructor, and a sample re-runs.

``docs/reach.json`` (rendered into docs/reach.md and the README line) holds the results of
the whole corpus, a multi-hour run (``tools/reach_corpus.py run``; see that tool). Here:

* the committed table must list exactly the cases ``reach_corpus`` enumerates from
  ``keras.applications`` / ``tf_keras.applications`` today, with each Keras version's
  paths: a new constructor (a Keras upgrade) makes the table stale and fails the test;
* a deterministic sample -- per application family the smallest case the committed run
  reached, each given the path its Keras version has covered least so far, so every
  family and every path is exercised -- is built, converted by this converter, run in
  tfjs 4.22 and compared with TensorFlow again; its outcome must be the committed one
  (a fix or a regression makes the table stale and fails the test until it is re-run);
  each sampled conversion runs on wasm too (Node), and the cases whose webgl bound is
  mostly the packed depthwise seed's term join the sample on webgl (``seed_dominated``).

Tolerance: ``tolerances.tolerance`` (4x TF's own float32-vs-float64 spread on the same
model over 16 images, at least 8 float32 ulps of the output scale:
``reach_run.calibrated_tolerance``), applied in ``reach_run.judge``; on webgl
``tolerances.webgl_tolerance`` (x6 for GLSL, plus the packed depthwise kernel's seed term).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import reach_corpus as rc
import reach_run
from checkout import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "docs" / "reach.json"
RERUN = "tools/reach_corpus.py run && tools/reach_corpus.py update"


def _committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def reached(doc: dict[str, Any]) -> dict[str, Any]:
    """The cases the committed run converted (built, under the size cap, every path run)."""
    return {
        cid: case
        for cid, case in doc["cases"].items()
        if "params" in case
        and all(r["ours"]["outcome"] not in ("missing", "skipped") for r in case["paths"].values())
    }


def sample(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(case id, path name) pairs: one case per family (its smallest reached one), every
    path of both Keras versions at least once, the other families on their version's
    first path."""
    reached_cases = reached(doc)
    by_family: dict[str, list[str]] = {}
    for cid, case in sorted(reached_cases.items()):
        by_family.setdefault(case["family"], []).append(cid)
    todo = [(f, p.name) for f in rc.FLAVORS for p in rc.PATHS[f]]
    picks = []
    smallest = {f: min(reached_cases[c]["params"] for c in cids) for f, cids in by_family.items()}
    # Fewest Keras versions first (so a Keras-2-only family takes a Keras 2 path), then smallest.
    order = sorted(by_family, key=lambda f: (len({c[:2] for c in by_family[f]}), smallest[f], f))
    for fam in order:
        cands = sorted(by_family[fam], key=lambda c: (reached_cases[c]["params"], c))
        flavors = {c.split("/", 1)[0] for c in cands}
        want = next(((f, p) for f, p in todo if f in flavors), None)
        if want is None:
            cid = cands[0]
            picks.append((cid, rc.PATHS[cid.split("/", 1)[0]][0].name))
            continue
        todo.remove(want)
        cid = next(c for c in cands if c.startswith(want[0] + "/"))
        picks.append((cid, want[1]))
    for flavor, path in todo:  # more paths than families: the smallest case of that version
        cid = min(
            (c for c in reached_cases if c.startswith(flavor + "/")),
            key=lambda c: (reached_cases[c]["params"], c),
        )
        picks.append((cid, path))
    return sorted(picks)


def test_table_lists_every_constructor() -> None:
    """A constructor added to (or removed from) keras/tf_keras.applications makes the table stale."""
    doc = _committed()
    enumerated = rc.case_ids()
    missing = sorted(set(enumerated) - set(doc["cases"]))
    extra = sorted(set(doc["cases"]) - set(enumerated))
    assert not missing and not extra, (
        f"docs/reach.json is stale: not in the table {missing}, no longer a constructor {extra}; re-run: {RERUN}"
    )
    for cid, case in doc["cases"].items():
        flavor = cid.split("/", 1)[0]
        assert set(case["paths"]) == {p.name for p in rc.PATHS[flavor]}, (
            f"{cid}: paths differ; re-run: {RERUN}"
        )
    assert doc["max_params"] == reach_run.MAX_PARAMS, f"MAX_PARAMS changed; re-run: {RERUN}"


def test_sample_covers_every_family_and_path() -> None:
    doc = _committed()
    picks = sample(doc)
    families = {doc["cases"][cid]["family"] for cid, _ in picks}
    assert families == {c["family"] for c in reached(doc).values()}
    paths = {(cid.split("/", 1)[0], p) for cid, p in picks}
    assert paths == {(f, p.name) for f in rc.FLAVORS for p in rc.PATHS[f]}


def seed_dominated(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(case id, path) of each case whose webgl bound is mostly the packed depthwise
    seed's term (more than twice the GLSL one), on its first path that ran on webgl:
    the sample re-runs them on webgl so that term is checked against tfjs itself."""
    import tolerances

    picks = []
    for cid, case in sorted(doc["cases"].items()):
        if case.get("webgl_tol", 0.0) <= 2 * tolerances.WEBGL_OP_ERROR_RATIO * case.get("tol", 0.0):
            continue
        path = next((p for p, r in case["paths"].items() if r["ours"].get("webgl") is not None), None)
        if path is not None:
            picks.append((cid, path))
    return picks


SAMPLE = sorted(set(sample(_committed()) + seed_dominated(_committed()))) if COMMITTED.exists() else []
# The sample re-runs webgl (headless Chromium on SwiftShader, a CPU rasterizer) only on
# its cases up to this size: a 28M-parameter ConvNeXt takes minutes there; the committed
# table has the webgl results of the whole corpus.
SAMPLE_WEBGL_MAX_PARAMS = 5_000_000


@pytest.mark.slow
@pytest.mark.tfjs
@pytest.mark.parametrize(("case_id", "path"), SAMPLE, ids=[f"{c}:{p}" for c, p in SAMPLE])
def test_sample_reproduces_committed_outcome(case_id: str, path: str, request: pytest.FixtureRequest) -> None:
    """Converted by this converter, run on tfjs's cpu backend and on each other backend
    the committed run has a verdict on: wasm (Node; a model loads and runs there in under
    a second) and, where the case is at most ``SAMPLE_WEBGL_MAX_PARAMS``, webgl (headless
    Chromium)."""
    case = _committed()["cases"][case_id]
    committed = case["paths"][path]["ours"]
    # The float64 twin (the tolerance) matters only where the committed run got as far as tfjs.
    twin = committed["outcome"] not in ("refused", "n/a")
    backends = [b for b in reach_run.EXTRA_BACKENDS if b in committed]
    if case.get("params", 0) > SAMPLE_WEBGL_MAX_PARAMS and "webgl" in backends:
        backends.remove("webgl")
    runtime = request.getfixturevalue("tfjs_backends" if "webgl" in backends else "tfjs")
    got = reach_run.run_case(case_id, ["ours"], runtime, paths=[path], twin=twin, backends=backends)
    got = got["ours"]["paths"][path]
    assert got["outcome"] == committed["outcome"], (
        f"{case_id} {path}: committed {committed['outcome']} ({committed.get('message', '')}), "
        f"now {got['outcome']} ({got.get('message', '')}); re-run: {RERUN}"
    )
    for backend in backends:
        verdicts = (got.get(backend, "").split(":")[0], committed.get(backend, "").split(":")[0])
        assert verdicts[0] == verdicts[1], (
            f"{case_id} {path} on {backend}: committed {committed.get(backend)}, now {got.get(backend)}"
        )


def test_judge_applies_the_cases_webgl_bound() -> None:
    """webgl is judged under the case's own bound when it has one (the packed depthwise
    seed's term), else under the cpu tolerance x WEBGL_OP_ERROR_RATIO."""
    import tolerances

    measured = {"max_diff": 1e-6, "webgl_max_diff": 1e-3}
    plain = tolerances.WEBGL_OP_ERROR_RATIO * 1e-5
    assert reach_run.judge(measured, 1e-5)["webgl"] == f"failed: differs from TF by 0.001 > tol {plain:.3g}"
    assert reach_run.judge(measured, 1e-5, webgl_tol=2e-3)["webgl"] == "ran"
    assert reach_run.judge(dict(measured, max_diff=2e-5), 1e-5, webgl_tol=2e-3)["outcome"] == "failed"


def test_judge_holds_wasm_to_the_cpu_tolerance() -> None:
    """wasm computes in float32 like the cpu backend: the same bound, not webgl's wider one;
    a conversion that failed on cpu keeps no verdict on another backend."""
    ran = reach_run.judge({"max_diff": 1e-6, "wasm_max_diff": 9e-6, "webgl_max_diff": 9e-6}, 1e-5)
    assert (ran["outcome"], ran["wasm"], ran["webgl"]) == ("ran", "ran", "ran")
    off = reach_run.judge({"max_diff": 1e-6, "wasm_max_diff": 2e-5, "webgl_max_diff": 2e-5}, 1e-5)
    assert off["wasm"] == "failed: differs from TF by 2e-05 > tol 1e-05"
    assert off["webgl"] == "ran"  # under 6x the cpu tolerance
    cpu_failed = reach_run.judge({"max_diff": 2e-5, "wasm_max_diff": 0.0}, 1e-5)
    assert (
        cpu_failed["outcome"] == "failed" and "wasm" not in cpu_failed and "wasm_max_diff" not in cpu_failed
    )


def test_merge_keeps_verdicts_of_backends_the_pass_did_not_run() -> None:
    """A wasm pass re-measures cpu and wasm; the committed webgl verdict of the same path
    stays when the cpu outcome is the same, and goes when it changed."""
    reach_corpus_tool = load_script("tools/reach_corpus.py")
    committed = {"outcome": "ran", "max_diff": 1e-7, "webgl": "ran", "webgl_max_diff": 2e-7}
    new = {"outcome": "ran", "max_diff": 1e-7, "wasm": "ran", "wasm_max_diff": 1e-7}
    reach_corpus_tool._keep_other_backends(new, committed)
    assert new == dict(committed, wasm="ran", wasm_max_diff=1e-7)
    refused = {"outcome": "refused", "message": "no"}
    reach_corpus_tool._keep_other_backends(refused, committed)
    assert "webgl" not in refused
    other = {"outcome": "ran", "max_diff": 1e-7, "webgl": "failed: x", "webgl_max_diff": 1.0}
    reach_corpus_tool._keep_other_backends(other, committed)
    assert other["webgl"] == "failed: x"  # measured by this pass: kept as measured


def test_reseed_reaches_layers_nested_in_blocks() -> None:
    """A tf_keras model whose convolution sits in a nested ``Sequential`` block (as
    ConvNeXt's stem does) gets the same weights however many unseeded draws came before:
    the sample must convert the model the table was made from."""
    import tf_keras as K

    def build(draws_before: int) -> list[Any]:
        K.backend.clear_session()
        for _ in range(draws_before):  # move tf_keras's process-wide random state on
            K.initializers.GlorotUniform()(shape=(3, 3))
        inp = K.Input((8, 8, 3))
        stem = K.Sequential([K.layers.Conv2D(4, 2, strides=2)], name="stem")
        out = K.layers.Dense(2)(K.layers.Flatten()(stem(inp)))
        model = K.Model(inp, out)
        reach_run.reseed_weights(model)
        return model.get_weights()

    first, second = build(0), build(3)
    assert len(first) == 4  # stem kernel and bias, dense kernel and bias
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()
    assert first[0].std() > 0.05  # the nested kernel was drawn, not left at zero


def test_judge_claims_nothing_past_the_comparable_tolerance() -> None:
    """A case whose own float32 result does not reproduce (tolerance over COMPARABLE_TOL)
    is counted as ran-but-not-comparable, never as a match; a NaN still fails."""
    import tolerances

    tol = 10 * tolerances.COMPARABLE_TOL
    got = reach_run.judge({"max_diff": 0.5 * tol, "webgl_max_diff": 0.5 * tol}, tol)
    assert got["outcome"] == "uncompared"
    assert "not compared" in got["message"]
    assert got["webgl"] == "ran"  # it executed on webgl; the table shows only that
    assert reach_run.judge({"max_diff": float("nan")}, tol)["outcome"] == "failed"
    at_bound = reach_run.judge({"max_diff": 0.0}, tolerances.COMPARABLE_TOL)
    assert at_bound["outcome"] == "ran"


def test_table_counts_uncompared_apart_from_ran() -> None:
    reach_table = load_script("tools/reach_table.py")
    case: dict[str, Any] = {
        "family": "f",
        "paths": {
            "p": {
                "ours": {"outcome": "uncompared", "message": "ran in tfjs, not compared", "webgl": "ran"},
                "reference": {"outcome": "ran", "max_diff": 0.0},
            }
        },
    }
    doc = {"max_params": 1, "cases": {"k2/X": case}}
    row = reach_table.counts(doc)[("k2", "p", "ours")]
    assert row["uncompared"] == 1 and row["ran"] == 0
    assert reach_table.backend_counts(doc, "webgl")["cpu"] == 0  # not among the webgl matches either
    notes = reach_table.Notes()
    assert reach_table._cell(case["paths"]["p"]["ours"], notes, case).startswith("○ ᵂ○")
