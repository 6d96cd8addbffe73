"""Run one reach-corpus case: build, save, convert (ours and/or the reference), run in tfjs, compare.

Outcome of each (case, path, converter):

* ``ran``: the conversion succeeded, tfjs 4.22 (Node, cpu backend) loaded and ran the
  model and its outputs match TensorFlow's within the case's tolerance (asked for, it
  then runs on wasm and webgl too, each with a verdict of its own: ``judge``);
* ``refused``: the converter said no (ours: a ``ConversionError``; the reference: a
  non-zero exit) -- the message is its reason;
* ``failed``: converted, then tfjs could not load/run it or its outputs differ (or our
  converter crashed with a traceback);
* ``skipped``: the case is over ``MAX_PARAMS`` and was not run (said so in the table);
* ``n/a``: this Keras version cannot save the source file for that path.

Tolerance: ``tolerances.tolerance`` -- 4x the gap between TF's float32 run and the
same model rebuilt in float64, at least 8 float32 ulps of the output scale, the gap
measured over a calibration batch (``calibrated_tolerance``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import Any

import coverage_corpus as cc
import numpy as np
import reach_corpus as rc
from tfjs_backends import EXTRA_BACKENDS, TfjsBackends
from tfjs_runtime import HarnessDied, TfjsError, TfjsRuntime
from tolerances import COMPARABLE_TOL, for_backend, max_diff, tolerance, webgl_tolerance
from webgl_depthwise import packed_depthwise_deviation

# Cases with more parameters than this are listed but not run: a guard for constructors
# added later, not a limit any case reaches today (the largest, ConvNeXtXLarge, has 348M
# parameters). Run alone, the slowest case (ResNetRS420, both converters) takes ~12 min
# here, and the machine's used memory peaked at 23 GB of 24 GiB while it ran (the runner
# plus the reference converter): a 24 GiB machine runs one case at a time.
MAX_PARAMS = 400_000_000
# A guard against a hung reference conversion, not a speed limit: its slowest conversion
# in the corpus (a SavedModel of 100M+ parameters to layers) takes ~5 min here.
REFERENCE_TIMEOUT_S = 3600.0
# What a case's result file keeps of its facts (``prepare``).
FACTS = ("side", "params", "tol", "bound", "webgl_tol", "webgl_bound")
CONVERTERS = ("ours", "reference")


def skipped_message(params: int, max_params: int = MAX_PARAMS) -> str:
    return f"not run: {params:,} parameters > the corpus cap of {max_params:,}"


def save_inputs(path: str, x: rc.Inputs) -> None:
    """``x`` as an .npz: arrays by input name, or ``arg0``, ``arg1``... in input order."""
    named = x if isinstance(x, dict) else {f"arg{i}": a for i, a in enumerate(x)}
    np.savez(path, **named)


def load_inputs(path: str, named: bool) -> rc.Inputs:
    with np.load(path) as z:
        if named:
            return {k: z[k] for k in sorted(z.files)}
        return [z[f"arg{i}"] for i in range(len(z.files))]


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def convert_ours(src: str, out: str, path: rc.Path) -> tuple[str, str]:
    """-> (status, message): status "ok", "refused" or "crash"; message is the warning/reason."""
    from tfjsconv import api
    from tfjsconv.errors import ConversionError
    from tfjsconv.options import ConversionOptions

    handler = _Warnings()
    logger = logging.getLogger("tfjsconv")
    logger.addHandler(handler)
    try:
        api.convert(
            src, out, ConversionOptions(input_format=path.input_format, output_format=path.output_format)
        )
    except ConversionError as exc:
        return "refused", _one_line(str(exc))
    except Exception:  # noqa: BLE001 - a traceback is a converter bug: recorded as a failure
        return "crash", _one_line(traceback.format_exc(limit=-2), 600)
    finally:
        logger.removeHandler(handler)
    return "ok", _one_line(" | ".join(handler.messages))


_EXC_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception)\b.*")


def reference_reason(stderr: str) -> str:
    """The reference's own error: the last ``SomethingError: ...`` line, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if _EXC_LINE.match(line):
            return _one_line(line)
    return _one_line(lines[-1]) if lines else "exited non-zero without a message"


def convert_reference(exe: str, src: str, out: str, path: rc.Path) -> tuple[str, str]:
    if (path.input_format, path.output_format) not in rc.REFERENCE_PAIRS:
        return "refused", (
            f"Unsupported input_format - output_format pair: {path.input_format} - {path.output_format}"
        )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    cmd = [
        exe,
        f"--input_format={path.input_format}",
        f"--output_format={path.output_format}",
        src,
        out,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=REFERENCE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "refused", f"did not finish within {REFERENCE_TIMEOUT_S:.0f} s"
    if proc.returncode < 0:  # killed (the OOM killer when runners share the memory): no verdict
        raise RuntimeError(
            f"the reference converter was killed by signal {-proc.returncode}; re-run the case"
        )
    if proc.returncode != 0 or not os.path.isfile(os.path.join(out, "model.json")):
        return "refused", reference_reason(proc.stderr + "\n" + proc.stdout)
    return "ok", ""


def run_tfjs(
    tfjs: TfjsRuntime | TfjsBackends,
    out: str,
    kind: str,
    x: rc.Inputs,
    ref32: Sequence[np.ndarray],
    backend: str = "cpu",
    output_names: Sequence[str] = (),
) -> tuple[float | None, str]:
    """-> (max diff or None, why not). With ``output_names`` (the TF model's named
    outputs, ``ref32``'s order) tfjs's outputs are matched to them by name, not order:
    converters order a signature's outputs differently."""
    try:
        feed = x if isinstance(x, dict) else list(x)
        if isinstance(tfjs, TfjsBackends):
            answer = tfjs.run_answer(out, kind, feed, backend)
        else:
            answer = tfjs.run(out, feed, kind=kind, backend=backend)
        if answer.get("backend") != backend:
            return None, f"asked for tfjs's {backend} backend, it ran on {answer.get('backend')}"
        got = answer["arrays"]
        names = [o.get("name") for o in answer["outputs"]]
        if output_names and sorted(names) == sorted(output_names):
            got = [got[names.index(n)] for n in output_names]
    except TfjsError as exc:
        return None, _one_line(exc.error.splitlines()[0] if exc.error else "tfjs error")
    except HarnessDied as exc:
        return None, _one_line(f"tfjs harness died: {exc}")
    if len(got) != len(ref32) or any(np.shape(g) != np.shape(r) for g, r in zip(got, ref32, strict=False)):
        return (
            None,
            f"outputs differ in shape: tfjs {[np.shape(g) for g in got]} vs TF {[np.shape(r) for r in ref32]}",
        )
    return max(max_diff(g, r) for g, r in zip(got, ref32, strict=False)), ""


def check_path(
    converter: str,
    exe: str | None,
    src: str,
    path: rc.Path,
    work: str,
    tfjs: TfjsRuntime | TfjsBackends,
    x: rc.Inputs,
    ref32: Sequence[np.ndarray],
    tol: float,
    output_names: Sequence[str] = (),
    webgl_tol: float | None = None,
    backends: Sequence[str] = (),
) -> dict[str, Any]:
    """Convert along ``path``, run on tfjs's cpu backend, compare; a model that ran on cpu
    is run on each of ``backends`` too ("wasm": Node; "webgl": Chromium, which needs a
    ``TfjsBackends``), judged by ``judge``."""
    out = os.path.join(work, f"out-{converter}")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    if converter == "ours":
        status, message = convert_ours(src, out, path)
    else:
        assert exe is not None
        status, message = convert_reference(exe, src, out, path)
    entry: dict[str, Any] = {"convert_s": round(time.perf_counter() - t0, 1)}
    if status == "refused":
        return dict(entry, outcome="refused", message=message)
    if status == "crash":
        return dict(entry, outcome="failed", message="converter traceback: " + message)
    if message:
        entry["warning"] = message
    try:
        diff, error = run_tfjs(tfjs, out, path.kind, x, ref32, output_names=output_names)
        if diff is None:
            return dict(entry, outcome="failed", message="converted, then tfjs cpu failed: " + error)
        entry["max_diff"] = diff
        if not diff <= tol:
            return judge(entry, tol, webgl_tol)
        for backend in EXTRA_BACKENDS:
            if backend not in backends:
                continue
            bdiff, berror = run_tfjs(tfjs, out, path.kind, x, ref32, backend, output_names)
            if bdiff is None:
                entry[backend] = "failed: " + berror
            else:
                entry[f"{backend}_max_diff"] = bdiff
        # One model at a time: two of the largest (1.4 GB of weights each) do not fit
        # in tfjs-backend-wasm's 4 GB heap together.
        tfjs.clear()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return judge(entry, tol, webgl_tol)


def judge(entry: dict[str, Any], tol: float, webgl_tol: float | None = None) -> dict[str, Any]:
    """``entry`` with its outcome and its verdict on each other backend it ran on, from
    its measured differences, under ``tolerances.for_backend`` of ``tol`` (wasm: ``tol``
    itself), or for webgl under the case's own ``webgl_tol`` when it has one.

    Apart from the measurement so ``tools/reach_corpus.py rejudge`` can apply another
    tolerance to a stored run without converting again.
    """
    entry = dict(entry)
    diff = entry["max_diff"]
    if not diff <= tol:
        for backend in EXTRA_BACKENDS:
            entry.pop(backend, None)
            entry.pop(f"{backend}_max_diff", None)
        return dict(
            entry, outcome="failed", message=f"tfjs cpu differs from TF by {diff:.3g} > tol {tol:.3g}"
        )
    entry.pop("message", None)
    outcome = "ran"
    if tol > COMPARABLE_TOL:
        outcome = "uncompared"
        entry["message"] = (
            f"ran in tfjs, not compared: TF's own float32 result does not reproduce on this random-weight "
            f"network (4x its float32-vs-float64 spread is {tol:.2g}, over {COMPARABLE_TOL:g} on outputs of "
            f"scale 1), so no comparison could tell a right conversion from a wrong one"
        )
    for backend in EXTRA_BACKENDS:
        if f"{backend}_max_diff" in entry:
            bdiff = entry[f"{backend}_max_diff"]
            own = backend == "webgl" and webgl_tol is not None
            btol = webgl_tol if own else for_backend(tol, "", backend)[0]
            entry[backend] = (
                "ran" if bdiff <= btol else f"failed: differs from TF by {bdiff:.3g} > tol {btol:.3g}"
            )
    return dict(entry, outcome=outcome)


def reseed_weights(model: Any) -> None:
    """Redraw every randomly initialized weight from its own initializer, given a seed.

    tf_keras's unseeded initializers draw from a process-wide counter, so the same
    constructor gives other weights after other models were built in the process; the
    corpus and its CI sample must convert the same model. Each weight keeps its
    initializer's distribution (``<name>_initializer`` of its layer) with a fixed seed.
    The model's own layers come first, then the layers nested in them (ConvNeXt's stem
    and downsampling ``Sequential`` blocks): a model without nested layers keeps the
    seeds it was drawn with before nested layers were reseeded.
    """
    top = list(model.layers)
    seen = {id(layer) for layer in top}
    nested = []
    for layer in top:
        for inner in layer._flatten_layers(include_self=False, recursive=True):
            if id(inner) not in seen:
                seen.add(id(inner))
                nested.append(inner)
    n = 0
    for layer in top + nested:
        for var in layer.weights:
            short = var.name.split("/")[-1].split(":")[0]
            init = None
            for attr in (f"{short}_initializer", f"{short.replace('_kernel', '')}_initializer"):
                init = getattr(layer, attr, None)
                if init is not None:
                    break
            if init is None or "seed" not in init.get_config():
                continue  # constant initializers (zeros, ones) are deterministic already
            n += 1
            seeded = type(init).from_config(dict(init.get_config(), seed=rc.SEED + n))
            var.assign(np.asarray(seeded(shape=tuple(var.shape), dtype="float32")))


def normalize_output_scale(model: Any, x: rc.Inputs) -> None:
    """Scale the last weighted layer so the outputs are O(1).

    Random-weight networks can shrink their activations to ~1e-12 (MobileNetV3's
    squeeze-excite gates at init); the tolerance's ulp floor is relative to a scale of
    at least 1, so tiny outputs would pass anything. A constant factor on the last
    kernel and bias changes no computation path, only the output scale.
    """
    peak = max(float(np.max(np.abs(o))) for o in cc.predict(model, x))
    if not np.isfinite(peak) or peak == 0.0:
        return
    for layer in reversed(model.layers):
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w / peak if np.asarray(w).dtype.kind == "f" else w for w in weights])
            return


def float64_twin_predictions(case_id: str, side: int, model: Any, x: rc.Inputs) -> list[np.ndarray] | None:
    """The same constructor built with floatx float64, given ``model``'s weights, run on ``x``.

    Building from the constructor (not from the config) needs no custom objects, so
    framework layers such as tf_keras's ``LayerScale`` get their twin too. None when a
    layer pins float32 or the weights do not fit.
    """
    flavor, name = case_id.split("/", 1)
    K = rc.keras_module(flavor)
    fn = rc.constructors(flavor)[name]
    old = K.backend.floatx()
    try:
        K.backend.set_floatx("float64")
        kw = rc.kwargs_for(fn, side)
        if rc.is_hub(fn):
            kw["dtype"] = "float64"  # KerasHub layers take the policy given, not floatx
        twin = fn(**kw)
        twin.set_weights(
            [
                np.asarray(w, np.float64) if np.asarray(w).dtype == np.float32 else w
                for w in model.get_weights()
            ]
        )
        outs = cc.predict(twin, cc.widened(x))
    except Exception:  # noqa: BLE001 - no float64 twin for this constructor
        return None
    finally:
        K.backend.set_floatx(old)
    if any(o.dtype != np.float64 for o in outs):
        return None
    return outs


def seeded(case_id: str, model: Any, side: int) -> rc.Inputs:
    """Give ``model`` the case's weights (seeded, output scale O(1)); -> its test input.

    A KerasHub backbone keeps the weights Keras 3 drew under ``rc.seed`` (its initializers
    are seeded by it) and its scale: its outputs come out of a LayerNorm or a tanh, O(1)."""
    x = rc.inputs(case_id, side)
    if not case_id.startswith("hub/"):
        reseed_weights(model)
        normalize_output_scale(model, x)
    return x


def case_tolerance(case_id: str, max_params: int = MAX_PARAMS) -> dict[str, Any] | None:
    """The case's tolerances as ``prepare`` derives them; None over ``max_params``."""
    model, side = rc.build(case_id)
    if model.count_params() > max_params:
        return None
    seeded(case_id, model, side)
    return calibrated_tolerance(case_id, side, model)


def calibrated_tolerance(case_id: str, side: int, model: Any, twin: bool = True) -> dict[str, Any]:
    """``tolerance`` from TF's float32-vs-float64 spread over ``rc.calibration_inputs``,
    and the webgl one: -> {tol, bound, webgl_tol, webgl_bound}.

    A corpus model has 2 outputs, so one image gives a spread that is the max of 2
    samples of TF's rounding error: a noisy estimate of its scale (the max of two
    |N(0, s)| is below s/4 one time in 25). Measured per image, the spread of one
    model varies 10x between images, and between batch sizes for the same image
    (other kernels, other summation order). The max over 16 images (32 outputs) is
    the scale of the error, not a draw of it; the tested image is among them; so is
    the deviation webgl's packed depthwise kernel adds (``tolerances.webgl_tolerance``).
    Without ``twin`` only the ulp floor applies (enough to tell "refused" from "ran").
    """
    xc = rc.calibration_inputs(case_id, side)
    cal32 = cc.predict(model, xc)
    cal64 = None
    if twin:
        K = rc.keras_module(case_id.split("/", 1)[0])
        cal64 = float64_twin_predictions(case_id, side, model, xc)
        if cal64 is None and isinstance(xc, list):
            cal64 = cc.float64_predictions(K, model, xc)
    tol, bound = tolerance(cal32, cal64)
    over = f" over {rc.CALIBRATION_IMAGES} images"
    webgl_tol, webgl_bound = webgl_tolerance(tol, bound, packed_depthwise_deviation(model, xc))
    return {"tol": tol, "bound": bound + over, "webgl_tol": webgl_tol, "webgl_bound": webgl_bound + over}


def prepare(
    case_id: str,
    work: str,
    max_params: int = MAX_PARAMS,
    paths: Sequence[str] | None = None,
    twin: bool = True,
) -> dict[str, Any]:
    """Build the case, save the source formats of ``paths`` (default all) under ``work``,
    store inputs and TF's predictions there; -> facts (side, params, tol, bound, webgl_tol, webgl_bound,
    sources: name -> path relative to ``work``, or "!" + why it could not be saved)."""
    flavor = case_id.split("/", 1)[0]
    model, side = rc.build(case_id)
    facts: dict[str, Any] = {"side": side, "params": int(model.count_params())}
    if facts["params"] > max_params:
        facts["skipped"] = skipped_message(facts["params"], max_params)
        return facts
    x = seeded(case_id, model, side)
    ref32 = cc.predict(model, x)
    if isinstance(model.output, dict):  # cc.predict's order: sorted by name
        facts["output_names"] = sorted(model.output)
    facts.update(calibrated_tolerance(case_id, side, model, twin), named_inputs=isinstance(x, dict))
    save_inputs(os.path.join(work, "x.npz"), x)
    np.savez(os.path.join(work, "ref32.npz"), *ref32)
    sources: dict[str, str] = {}
    for p in rc.PATHS[flavor]:
        if p.source not in sources and (paths is None or p.name in paths):
            try:
                sources[p.source] = os.path.relpath(rc.save(flavor, model, p.source, work), work)
            except Exception as exc:  # noqa: BLE001 - this Keras cannot write that format
                sources[p.source] = "!" + _one_line(f"Keras cannot save it: {type(exc).__name__}: {exc}", 200)
    facts["sources"] = sources
    return facts


def convert_prepared(
    case_id: str,
    work: str,
    facts: dict[str, Any],
    converters: Sequence[str],
    tfjs: TfjsRuntime | TfjsBackends,
    reference_exe: str | None = None,
    paths: Sequence[str] | None = None,
    backends: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """converter -> {facts, "paths": {path name: result}} from what ``prepare`` left in
    ``work``; ``backends``: the other backends each conversion that ran on cpu runs on."""
    flavor = case_id.split("/", 1)[0]
    wanted = [p for p in rc.PATHS[flavor] if paths is None or p.name in paths]
    common = {k: facts[k] for k in FACTS if k in facts}
    results: dict[str, dict[str, Any]] = {c: dict(common, paths={}) for c in converters}
    if "skipped" in facts:
        for c in converters:
            results[c]["paths"] = {
                p.name: {"outcome": "skipped", "message": facts["skipped"]} for p in wanted
            }
        return results
    x = load_inputs(os.path.join(work, "x.npz"), facts.get("named_inputs", False))
    with np.load(os.path.join(work, "ref32.npz")) as z:
        ref32 = [z[f"arr_{i}"] for i in range(len(z.files))]
    names = facts.get("output_names", [])
    for p in wanted:
        src = facts["sources"][p.source]
        for c in converters:
            if src.startswith("!"):
                results[c]["paths"][p.name] = {"outcome": "n/a", "message": src[1:]}
                continue
            res = check_path(
                c,
                reference_exe,
                os.path.join(work, src),
                p,
                work,
                tfjs,
                x,
                ref32,
                facts["tol"],
                names,
                facts.get("webgl_tol"),
                backends,
            )
            if res.get("message"):
                res["message"] = res["message"].replace(work + os.sep, "").replace(work, ".")
            results[c]["paths"][p.name] = res
    return results


def run_case(
    case_id: str,
    converters: Sequence[str],
    tfjs: TfjsRuntime | TfjsBackends,
    reference_exe: str | None = None,
    paths: Sequence[str] | None = None,
    max_params: int = MAX_PARAMS,
    twin: bool = True,
    backends: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """``prepare`` + ``convert_prepared`` in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="reach-") as work:
        facts = prepare(case_id, work, max_params, paths, twin)
        return convert_prepared(case_id, work, facts, converters, tfjs, reference_exe, paths, backends)
