"""``--quantize_budget``: search the staged float32 model's dtypes, then rewrite its weights.

``api.convert`` calls ``quantize_to_budget`` after the converter wrote the float32
model into the staging directory: the search measures the model exactly as written
(see ``evaluate``), and the weights are written again with the chosen dtypes by the
same writer as ``--quantize_*`` (``tfjsconv.weights``), so the bytes follow the same
rules. Nothing reaches the output path unless all of it succeeds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfjsconv import model_json, quantization
from tfjsconv import weights as weights_io
from tfjsconv.errors import ConversionError
from tfjsconv.formats import DEFAULT_ERROR_METRIC
from tfjsconv.options import ConversionOptions
from tfjsconv.quantize_search import calibration, evaluate, metrics, report, search

log = logging.getLogger(__name__)


def _exact_pattern(name: str) -> str:
    """An fnmatch pattern matching exactly ``name`` (``*``, ``?`` and ``[`` bracketed)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _evaluator(
    model: Mapping[str, Any], named: Sequence[tuple[str, np.ndarray]], options: ConversionOptions
) -> Any:
    if model.get("format") == "graph-model":
        return evaluate.GraphEvaluator(model, named)
    return evaluate.LayersEvaluator(model, named, options.allow_unsafe_deserialization)


def _search_weights(named: Sequence[tuple[str, np.ndarray]], fed: Sequence[str]) -> list[search.Weight]:
    fed_set = set(fed)
    out = []
    for name, array in named:
        quantizable = array.dtype == np.float32 and name in fed_set
        out.append(search.Weight(name, tuple(int(d) for d in array.shape), quantizable, int(array.nbytes)))
    return out


def run_search(
    model: Mapping[str, Any],
    named: Sequence[tuple[str, np.ndarray]],
    options: ConversionOptions,
    *,
    max_evaluations: int = search.DEFAULT_MAX_EVALUATIONS,
) -> tuple[search.Result, list[search.Weight], str]:
    """(result, weights as the search saw them, calibration description)."""
    budget = float(options.quantize_budget if options.quantize_budget is not None else 0.0)
    metric = options.error_metric or DEFAULT_ERROR_METRIC
    evaluator = _evaluator(model, named, options)
    try:
        if options.calibration_inputs:
            calib = calibration.load(options.calibration_inputs, evaluator.specs)
        else:
            calib = calibration.generate(evaluator.specs)
            log.warning(
                "no calibration inputs given: the error budget is measured on inputs %s", calib.source
            )
        evaluator.set_inputs(calib.arrays)
        reference = evaluator.run()
        metrics.check_applicable(metric, reference)
        arrays = dict(named)
        cache: dict[tuple[str, str], np.ndarray] = {}

        def value(name: str, dtype: str) -> np.ndarray:
            key = (name, dtype)
            if key not in cache:
                stored, meta = quantization.quantize(arrays[name], dtype, name=name)
                cache[key] = quantization.dequantize(stored, meta).reshape(arrays[name].shape)
            return cache[key]

        def measure(assignment: Mapping[str, str]) -> tuple[float, float]:
            outs = evaluator.run({n: value(n, d) for n, d in assignment.items()})
            return metrics.error(metric, reference, outs), metrics.proxy(metric, reference, outs)

        weight_list = _search_weights(named, evaluator.fed)
        start = time.monotonic()
        result = search.search(weight_list, arrays, measure, budget, max_evaluations=max_evaluations)
        log.info(
            "quantize_budget: %d TensorFlow evaluations (cap %d) in %.1f s; %d -> %d weight bytes, "
            "%s error %.6g <= %.6g",
            result.evaluations,
            max_evaluations,
            time.monotonic() - start,
            result.uniform["float32"].bytes if result.uniform["float32"] else 0,
            result.bytes,
            metric,
            result.error,
            budget,
        )
    finally:
        evaluator.close()
    return result, weight_list, calib.source


def quantize_to_budget(staging: str, options: ConversionOptions, report_dir: str) -> None:
    """Choose the dtypes of the model in ``staging``, rewrite its weights, write the report."""
    model, named = model_json.load_tfjs_model(staging)
    named = [(n, np.array(a)) for n, a in named]  # own the data: the shards are rewritten below
    result, weight_list, source = run_search(model, named, options)

    specs: dict[str, list[str]] = {}
    for name, dtype in result.assignment.items():
        specs.setdefault(dtype, []).append(_exact_pattern(name))
    arrays = dict(named)
    groups = []
    old_paths = []
    for group in model["weightsManifest"]:
        groups.append([(entry["name"], arrays[entry["name"]]) for entry in group["weights"]])
        old_paths.extend(group["paths"])
    for path in old_paths:
        os.remove(os.path.join(staging, path))
    model["weightsManifest"] = weights_io.write_weights(
        groups,
        staging,
        shard_size_bytes=options.weight_shard_size_bytes,
        quantization={dtype: tuple(patterns) for dtype, patterns in sorted(specs.items())},
    )
    model_json.write_model_json(staging, model)
    content = report.build(
        result,
        weight_list,
        budget=float(options.quantize_budget or 0.0),
        metric=options.error_metric or DEFAULT_ERROR_METRIC,
        calibration=source,
        cap=search.DEFAULT_MAX_EVALUATIONS,
    )
    if not os.path.isdir(report_dir):
        raise ConversionError(f"quantization report directory does not exist: {report_dir}")
    report.write(content, report_dir)
