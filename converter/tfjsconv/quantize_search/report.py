"""The quantization report: ``quantization_report.json``, ``.md`` (a table) and ``.svg``.

Everything in it is a function of the model, the inputs and the budget (no times, no
paths beyond the calibration file's base name), so the files are reproducible.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from tfjsconv.quantize_search import search, svg

JSON_NAME = "quantization_report.json"
MD_NAME = "quantization_report.md"
SVG_NAME = "quantization_report.svg"
FILES = (JSON_NAME, MD_NAME, SVG_NAME)


def _num(value: float) -> Any:
    return value if math.isfinite(value) else ("Infinity" if value > 0 else "NaN")


def _contribution(w: search.Weight, dtype: str, measured: Mapping[str, float]) -> Any:
    """The weight's measured error at its dtype; 0 unquantized; None when not measured
    (the search stopped at uniform uint8)."""
    if not w.quantizable or dtype == "float32":
        return 0.0
    return _num(measured[dtype]) if dtype in measured else None


def build(
    result: search.Result,
    weights: Sequence[search.Weight],
    *,
    budget: float,
    metric: str,
    calibration: str,
    cap: int,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (weights in manifest order)."""
    rows: list[dict[str, Any]] = []
    for w in weights:
        dtype = result.assignment.get(w.name, "float32") if w.quantizable else "unchanged"
        size = w.size * search.ITEMSIZE[dtype] if w.quantizable else w.fixed_bytes
        measured = result.contribution.get(w.name, {})
        rows.append(
            {
                "name": w.name,
                "shape": list(w.shape),
                "dtype": dtype,
                "bytes": size,
                "error_contribution": _contribution(w, dtype, measured),
                "grouped": w.name in result.grouped,
                # Every dtype the search measured this weight at (alone, others float32).
                "measured": {d: _num(e) for d, e in sorted(measured.items())},
            }
        )
    return {
        "metric": metric,
        "budget": _num(budget),
        "calibration": calibration,
        "evaluations": result.evaluations,
        "evaluation_cap": cap,
        "units": result.units,
        "chosen": {"bytes": result.bytes, "error": _num(result.error)},
        "uniform": {
            dtype: (None if p is None else {"bytes": p.bytes, "error": _num(p.error)})
            for dtype, p in result.uniform.items()
        },
        "tried": [[p.bytes, _num(p.error)] for p in result.tried],
        "weights": rows,
    }


def markdown(report: Mapping[str, Any]) -> str:
    """A readable table: the totals next to the uniform choices, then one row per weight."""
    lines = [
        "# Quantization report",
        "",
        f"Budget: {report['metric']} <= {report['budget']}; calibration: {report['calibration']}.",
        f"Search: {report['evaluations']} TensorFlow evaluations (cap {report['evaluation_cap']}).",
        "",
        "| configuration | weight bytes | measured error |",
        "|---|---:|---:|",
    ]
    for dtype, point in report["uniform"].items():
        if point is None:
            lines.append(f"| uniform {dtype} | - | not possible |")
        else:
            lines.append(f"| uniform {dtype} | {point['bytes']} | {point['error']} |")
    lines.append(f"| **chosen** | **{report['chosen']['bytes']}** | **{report['chosen']['error']}** |")
    lines += [
        "",
        "Error contribution: the model's error with only that weight at its dtype (others float32).",
        "",
        "| weight | shape | dtype | bytes | error contribution | alone at uint8 |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in report["weights"]:
        shape = "x".join(str(d) for d in row["shape"]) or "scalar"
        note = " (group)" if row["grouped"] else ""
        name = row["name"].replace("|", "\\|")
        measured = "not measured" if row["error_contribution"] is None else row["error_contribution"]
        uint8 = row["measured"].get("uint8", "-")
        lines.append(f"| `{name}` | {shape} | {row['dtype']} | {row['bytes']} | {measured}{note} | {uint8} |")
    return "\n".join(lines) + "\n"


def write(report: Mapping[str, Any], out_dir: str) -> tuple[str, ...]:
    """Write the three files into ``out_dir``; return their names."""

    def point(p: Any) -> tuple[int, float]:
        err = p["error"] if isinstance(p["error"], (int, float)) else math.inf
        return int(p["bytes"]), float(err)

    uniform = {d: (None if p is None else point(p)) for d, p in report["uniform"].items()}
    tried = [point({"bytes": b, "error": e}) for b, e in report["tried"]]
    budget = report["budget"] if isinstance(report["budget"], (int, float)) else math.inf
    drawing = svg.plot(uniform, point(report["chosen"]), tried, float(budget), report["metric"])
    texts = {
        JSON_NAME: json.dumps(report, indent=1, sort_keys=False) + "\n",
        MD_NAME: markdown(report),
        SVG_NAME: drawing,
    }
    for name, text in texts.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return FILES
