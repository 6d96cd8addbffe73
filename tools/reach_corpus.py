#!/usr/bin/env python3
"""Run the reach corpus (every keras/tf_keras application x file format x tfjs format).

    tools/reach_corpus.py run [--converters ours,reference] [--results DIR] [--only REGEX]
            [--backends wasm,webgl]
        run every case that has no result in DIR yet (default test-artifacts/reach),
        one worker process per case, one case at a time; resumable (a result file per
        case and converter) and safe to start twice (a lock file per case); each
        conversion runs on tfjs's cpu backend, and, if it ran there, on --backends too
    tools/reach_corpus.py update [--ours DIR] [--reference DIR]
        collect the results into docs/reach.json and regenerate docs/reach.md and the
        README line (tools/reach_table.py)
    tools/reach_corpus.py merge [--ours DIR] [--reference DIR]
        overlay the results of a partial run (the cases with a result file in DIR, e.g.
        a --backends wasm pass, or new cases) on docs/reach.json, keep the rest as
        committed, and regenerate
    tools/reach_corpus.py counts [--ours DIR] [--reference DIR]
        print the counts (ran / refused / failed ...) per Keras version, path, converter
    tools/reach_corpus.py rejudge [--ours DIR] [--reference DIR] [--only REGEX]
        derive each case's tolerance again (after a change to how it is derived) and
        re-apply it to the stored measurements, without converting or running tfjs again

Cases are defined in tests/python/reach_corpus.py, run by tests/python/reach_run.py.
The reference converter is the one bench/setup_reference.sh installs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# REACH_CONVERTER_ROOT: run "ours" from another tree's converter/ (e.g. a `git archive`
# of the commit being measured) instead of this checkout's.
sys.path[:0] = [
    os.environ.get("REACH_CONVERTER_ROOT", str(ROOT / "converter")),
    str(ROOT / "tests" / "python"),
    str(ROOT / "tools"),
]

DEFAULT_RESULTS = ROOT / "test-artifacts" / "reach"
# Built cases (saved files, inputs, TF's predictions, tolerance), shared by every run so
# a second pass (another converter, another commit) converts the same files.
SOURCES = ROOT / "test-artifacts" / "reach-src"
COMMITTED = ROOT / "docs" / "reach.json"
CONVERTERS = ("ours", "reference")


def result_file(results: Path, case_id: str, converter: str) -> Path:
    return results / f"{case_id.replace('/', '__')}.{converter}.json"


def reference_exe() -> str:
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "setup_reference.sh")], capture_output=True, text=True, check=True
    )
    return proc.stdout.strip().splitlines()[-1]


def _write(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_one(
    case_id: str, converters: list[str], results: Path, exe: str | None, backends: tuple[str, ...] = ()
) -> None:
    """The worker: one case, every path, the given converters; one result file each."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import reach_corpus as rc
    import reach_run
    from tfjs_backends import TfjsBackends
    from tfjs_runtime import TfjsRuntime

    family = rc.case_families()[case_id]
    work = SOURCES / case_id.replace("/", "__")
    facts_file = work / "facts.json"
    try:
        facts = json.loads(facts_file.read_text(encoding="utf-8")) if facts_file.exists() else None
        if facts is not None and facts.get("skipped") and facts["params"] <= reach_run.MAX_PARAMS:
            facts = None  # skipped under a lower cap: build it now
        if facts is None:
            work.mkdir(parents=True, exist_ok=True)
            facts = reach_run.prepare(case_id, str(work))
            _write(facts_file, facts)
        elif "tol" in facts and "webgl_tol" not in facts:  # built before webgl bounds
            facts.update(reach_run.case_tolerance(case_id) or {})
            _write(facts_file, facts)
        with TfjsBackends() if "webgl" in backends else TfjsRuntime() as tfjs:
            out = reach_run.convert_prepared(
                case_id, str(work), facts, converters, tfjs, reference_exe=exe, backends=backends
            )
    except ValueError as exc:  # no input side builds
        flavor = case_id.split("/", 1)[0]
        msg = " ".join(str(exc).split())[:300]
        out = {
            c: {"paths": {p.name: {"outcome": "n/a", "message": msg} for p in rc.PATHS[flavor]}}
            for c in converters
        }
    for c, doc in out.items():
        _write(result_file(results, case_id, c), dict(doc, case=case_id, family=family))


# Run order only (membership is enumerated): the likely-smallest constructor of each
# family first, both Keras versions side by side, so a partial run covers every family.
FIRST = (
    "MobileNetV3Small RegNetX002 ConvNeXtTiny EfficientNetV2B0 EfficientNetB0 MobileNetV2 MobileNet "
    "NASNetMobile DenseNet121 ResNet50 ResNet50V2 ResNetRS50 InceptionV3 Xception VGG16 VGG19 "
    "InceptionResNetV2"
).split()


def run_order(ids: list[str]) -> list[str]:
    def key(case_id: str) -> tuple[int, str, str]:
        flavor, name = case_id.split("/", 1)
        return (FIRST.index(name) if name in FIRST else len(FIRST), name, flavor)

    return sorted(ids, key=key)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _take(lock: Path) -> bool:
    """Create ``lock`` holding our pid; a lock whose runner is gone is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text = lock.read_text()
            except OSError:
                continue
            if not text.strip().isdigit() or _alive(int(text)):
                return False  # being written, or its runner is alive
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def run_all(converters: list[str], results: Path, only: str | None, backends: tuple[str, ...] = ()) -> int:
    import reach_corpus as rc

    results.mkdir(parents=True, exist_ok=True)
    exe = reference_exe() if "reference" in converters else None
    ids = run_order([c for c in rc.case_ids() if only is None or re.search(only, c)])
    for case_id in ids:
        todo = [c for c in converters if not result_file(results, case_id, c).exists()]
        if not todo:
            continue
        lock = results / f"{case_id.replace('/', '__')}.lock"
        if not _take(lock):
            continue  # another runner has it
        try:
            t0 = time.perf_counter()
            cmd = [sys.executable, __file__, "case", case_id, "--converters", ",".join(todo)]
            cmd += ["--results", str(results)] + (["--exe", exe] if exe else [])
            cmd += ["--backends", ",".join(backends)] if backends else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            secs = time.perf_counter() - t0
            if proc.returncode != 0:
                tail = " ".join(proc.stderr.strip().splitlines()[-1:])[:300]
                for c in todo:
                    _write(
                        result_file(results, case_id, c),
                        {
                            "case": case_id,
                            "family": rc.case_families()[case_id],
                            "worker_error": f"worker exited {proc.returncode}: {tail}",
                            "paths": {},
                        },
                    )
            print(f"{case_id}: {','.join(todo)} in {secs:.0f} s (exit {proc.returncode})", flush=True)
        finally:
            lock.unlink(missing_ok=True)
    return 0


def rejudge(ours: Path, reference: Path, only: str | None) -> int:
    """New tolerance per case (a worker process each), re-applied to its stored results."""
    import reach_corpus as rc
    import reach_run

    for case_id in rc.case_ids():
        files = [result_file(d, case_id, c) for d, c in ((ours, "ours"), (reference, "reference"))]
        files = [f for f in files if f.exists()]
        if (only and not re.search(only, case_id)) or not files:
            continue
        docs = [json.loads(f.read_text(encoding="utf-8")) for f in files]
        if "tol" not in docs[0]:
            continue  # skipped, n/a or a worker error: nothing was measured
        proc = subprocess.run(
            [sys.executable, __file__, "tolerance", case_id], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(f"{case_id}: tolerance worker exited {proc.returncode}", flush=True)
            continue
        derived = json.loads(proc.stdout.strip().splitlines()[-1])
        if derived is None:
            continue  # over the size cap now
        for f, doc in zip(files, docs, strict=True):
            for name, res in doc["paths"].items():
                if "max_diff" in res:
                    doc["paths"][name] = reach_run.judge(res, derived["tol"], derived["webgl_tol"])
            _write(f, dict(doc, **derived))
        facts_file = SOURCES / case_id.replace("/", "__") / "facts.json"
        if facts_file.exists():
            facts = json.loads(facts_file.read_text(encoding="utf-8"))
            _write(facts_file, dict(facts, **derived))
        print(f"{case_id}: tol {docs[0]['tol']:.3g} -> {derived['tol']:.3g}", flush=True)
    return 0


def collect(ours: Path, reference: Path) -> dict[str, Any]:
    """The committed document: case -> facts + path -> converter -> result (no timings)."""
    import reach_corpus as rc

    cases: dict[str, Any] = {}
    families = rc.case_families()
    for case_id in rc.case_ids():
        flavor = case_id.split("/", 1)[0]
        entry: dict[str, Any] = {"family": families[case_id], "paths": {}}
        for conv, where in (("ours", ours), ("reference", reference)):
            f = result_file(where, case_id, conv)
            doc = json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"paths": {}}
            _apply(entry, doc, conv, rc.PATHS[flavor])
        cases[case_id] = entry
    return {"max_params": _max_params(), "cases": cases}


def _apply(entry: dict[str, Any], doc: dict[str, Any], conv: str, paths: Any) -> None:
    """Put one converter's result file ``doc`` into a case's committed ``entry``."""
    import tolerances

    for key in ("side", "params", "bound"):
        if key in doc:
            entry[key] = doc[key]
    if "tol" in doc:
        entry["tol"] = float(f"{doc['tol']:.2g}")
    # The webgl bound is kept where it is more than the cpu one scaled (the packed
    # depthwise kernel's term, ``tolerances.webgl_tolerance``).
    if "tol" in doc and doc.get("webgl_tol", 0.0) > tolerances.webgl_tolerance(doc["tol"], "")[0]:
        entry["webgl_tol"] = float(f"{doc['webgl_tol']:.2g}")
        entry["webgl_bound"] = doc["webgl_bound"]
    for p in paths:
        entry["paths"].setdefault(p.name, {})[conv] = _kept(doc, p.name)


def _kept(doc: dict[str, Any], path_name: str) -> dict[str, Any]:
    """What the committed document keeps of one path's result in a result file."""
    res = doc["paths"].get(path_name)
    if res is None:
        why = doc.get("worker_error", "no result: the corpus run did not reach this case")
        res = {"outcome": "failed" if "worker_error" in doc else "missing", "message": why}
    extra = _extra_backends()
    keep = {k: res[k] for k in ("outcome", "message", "warning", *extra) if res.get(k)}
    for key in ("max_diff", *(f"{b}_max_diff" for b in extra)):
        if key in res:
            keep[key] = float(f"{res[key]:.2g}")
    return keep


def merge(dirs: dict[str, Path]) -> list[str]:
    """The committed document with a converter's results replaced by the ones in its
    directory (``dirs``: converter -> directory) for the cases that have a result file
    there (a partial re-run: a pass on another backend, new cases); every other result
    is kept as committed. A path's verdict on a backend the new result did not run on
    (a ``--backends wasm`` pass keeps the webgl one) stays as committed when its cpu
    outcome is the same: a pass on one backend does not erase another's measurement.
    After a converter change that alters a case's model, re-run it on every backend.
    Cases no longer enumerated are dropped, new ones start as not reached."""
    import reach_corpus as rc
    import reach_run

    old = json.loads(COMMITTED.read_text(encoding="utf-8"))["cases"]
    families = rc.case_families()
    empty: dict[str, Any] = {"paths": {}}
    cases: dict[str, Any] = {}
    merged = set()
    for case_id in rc.case_ids():
        flavor = case_id.split("/", 1)[0]
        entry = old.get(case_id) or {
            "family": families[case_id],
            "paths": {p.name: {c: _kept(empty, p.name) for c in CONVERTERS} for p in rc.PATHS[flavor]},
        }
        for conv, where in dirs.items():
            f = result_file(where, case_id, conv)
            if not f.exists():
                continue
            before = {name: dict(by_conv.get(conv, {})) for name, by_conv in entry["paths"].items()}
            _apply(entry, json.loads(f.read_text(encoding="utf-8")), conv, rc.PATHS[flavor])
            for name, by_conv in entry["paths"].items():
                _keep_other_backends(by_conv[conv], before.get(name, {}))
            merged.add(case_id)
        for by_conv in entry["paths"].values():  # kept as skipped: measured against today's cap
            for conv, res in by_conv.items():
                if res["outcome"] != "skipped":
                    continue
                if entry["params"] > reach_run.MAX_PARAMS:
                    res["message"] = reach_run.skipped_message(entry["params"])
                else:
                    by_conv[conv] = _kept(empty, "")  # under the cap now: not reached yet
        cases[case_id] = entry
    _write_committed({"max_params": _max_params(), "cases": cases})
    return sorted(merged)


def _extra_backends() -> tuple[str, ...]:
    """The backends besides cpu a result can have a verdict on."""
    from tfjs_backends import EXTRA_BACKENDS

    return EXTRA_BACKENDS


def _keep_other_backends(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Carry ``old``'s verdicts on the backends ``new`` was not run on into ``new``, when
    both have the same cpu outcome (``merge``)."""
    if new.get("outcome") != old.get("outcome") or new.get("outcome") not in ("ran", "uncompared"):
        return
    for backend in _extra_backends():
        if backend in new or backend not in old:
            continue
        new[backend] = old[backend]
        if f"{backend}_max_diff" in old:
            new[f"{backend}_max_diff"] = old[f"{backend}_max_diff"]


def _max_params() -> int:
    import reach_run

    return reach_run.MAX_PARAMS


def update(ours: Path, reference: Path) -> None:
    _write_committed(collect(ours, reference))


def _write_committed(doc: dict[str, Any]) -> None:
    """docs/reach.json, then everything reach_table renders from it."""
    import reach_table

    COMMITTED.write_text(
        json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for rel, content in reach_table.outputs().items():
        (ROOT / rel).write_text(content, encoding="utf-8")


def _backends(parser: argparse.ArgumentParser, text: str) -> tuple[str, ...]:
    backends = tuple(b for b in text.split(",") if b)
    unknown = sorted(set(backends) - set(_extra_backends()))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(_extra_backends())}")
    return backends


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--converters", default="ours,reference")
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    run.add_argument("--only")
    run.add_argument(
        "--backends", default="", help="also run what ran on cpu on these: wasm (Node), webgl (Chromium)"
    )
    case = sub.add_parser("case")
    case.add_argument("case_id")
    case.add_argument("--converters", default="ours,reference")
    case.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    case.add_argument("--exe")
    case.add_argument("--backends", default="")
    upd = sub.add_parser("update")
    mrg = sub.add_parser("merge", help="overlay the results of a partial run on the committed table")
    mrg.add_argument("--ours", type=Path)
    mrg.add_argument("--reference", type=Path)
    cnt = sub.add_parser("counts", help="print the counts table of result directories (nothing written)")
    rej = sub.add_parser("rejudge", help="re-derive tolerances and re-apply them to stored results")
    rej.add_argument("--only")
    for p in (upd, cnt, rej):
        p.add_argument("--ours", type=Path, default=DEFAULT_RESULTS)
        p.add_argument("--reference", type=Path, default=DEFAULT_RESULTS)
    tol = sub.add_parser("tolerance", help="(worker) print one case's [tolerance, bound] as JSON")
    tol.add_argument("case_id")
    args = parser.parse_args(argv)
    if args.cmd == "rejudge":
        return rejudge(args.ours, args.reference, args.only)
    if args.cmd == "tolerance":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import reach_run

        print(json.dumps(reach_run.case_tolerance(args.case_id)))
        return 0
    if args.cmd == "merge":
        dirs = {c: d for c, d in (("ours", args.ours), ("reference", args.reference)) if d is not None}
        merged = merge(dirs)
        print(f"merged {len(merged)} case(s) from {', '.join(map(str, dirs.values())) or 'nothing'}")
        return 0
    if args.cmd == "counts":
        import reach_table

        print("\n".join(reach_table.summary_table(collect(args.ours, args.reference))))
        return 0
    if args.cmd == "run":
        convs = args.converters.split(",")
        unknown = sorted(set(convs) - set(CONVERTERS))
        if unknown:
            parser.error(f"unknown converter(s) {', '.join(unknown)}; choose from {', '.join(CONVERTERS)}")
        return run_all(convs, args.results, args.only, _backends(parser, args.backends))
    if args.cmd == "case":
        backends = _backends(parser, args.backends)
        run_one(args.case_id, args.converters.split(","), args.results, args.exe, backends)
        return 0
    update(args.ours, args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
