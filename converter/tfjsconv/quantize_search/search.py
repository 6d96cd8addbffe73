"""Choose each weight's dtype so the model fits an error budget with the fewest bytes.

The dtypes are the ones tfjs 4.22 decodes: float32 (4 bytes per value), float16 and
uint16 (2), uint8 (1). Errors are *measured* (``measure`` runs the model with the
weights quantized and dequantized by ``tfjsconv.quantization``); nothing is estimated
from weight statistics except which 2-byte dtype a weight takes.

The algorithm, in four steps, every one deterministic (sorted by bytes then name):

1. **2-byte dtype per weight**: float16 or uint16, whichever reconstructs the weight
   with the smaller largest absolute error (uint16 on ties, and when a value is beyond
   float16's range). Both cost 2 bytes, so this choice never costs size.
2. **Sensitivity**: for each *unit* (a weight, or the group of the smallest weights when
   the evaluation cap would otherwise be exceeded), measure the model's error with only
   that unit at its 2-byte dtype, and with only that unit at uint8 (2 evaluations each).
   These are the per-weight "error contributions" of the report.
3. **Greedy order**: every unit offers two moves, float32 -> 2 bytes (saves 2 bytes per
   value, costs its 2-byte error) and 2 bytes -> uint8 (saves 1 byte per value, costs
   the uint8 error minus the 2-byte error). Moves are sorted by bytes saved per unit of
   error (error-free moves first, larger savings first). Applying the first k moves
   gives a configuration whose size shrinks as k grows.
4. **Verification with backoff**: measure the whole order (k = all); if it is over
   budget, binary-search the largest k whose *measured* error is within budget (errors
   do not add up exactly, so every kept configuration is measured, never predicted).
   Then, while evaluations remain, try each later move on its own on top of the kept
   configuration and keep it when the measured error stays within budget.

The uniform float16/uint16/uint8 configurations are measured first (for the report);
when uniform uint8 is within budget nothing can be smaller and the search stops there,
and when another uniform choice is within budget and smaller than the search's result,
it is chosen.

Cost: 1 reference run + 3 uniform runs + 2 per unit + ~log2(moves) + the optional tail,
never more than ``max_evaluations`` (the units are grouped to fit it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfjsconv import quantization
from tfjsconv.errors import ConversionError

DTYPES: tuple[str, ...] = ("float32", "float16", "uint16", "uint8")
ITEMSIZE: Mapping[str, int] = {"float32": 4, "float16": 2, "uint16": 2, "uint8": 1}
DEFAULT_MAX_EVALUATIONS = 300
# Evaluations the search keeps for step 4's binary search beyond the sensitivities.
_VERIFY_RESERVE = 12
_FIXED_EVALUATIONS = 4  # the reference run and the three uniform configurations
GROUP = "(smallest weights, measured together)"

Assignment = Mapping[str, str]
# measure(assignment) -> (error under the metric, proxy error for ranking).
Measure = Callable[[Assignment], tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class Weight:
    """A weight as the search sees it: its name, shape, and whether it may be quantized."""

    name: str
    shape: tuple[int, ...]
    quantizable: bool
    fixed_bytes: int = 0  # bytes of a weight that is not quantized (int32, bool...)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class Point:
    """One measured configuration: its weight bytes and error."""

    bytes: int
    error: float


@dataclasses.dataclass(frozen=True)
class Result:
    assignment: dict[str, str]
    error: float
    bytes: int
    evaluations: int
    units: int
    grouped: tuple[str, ...]
    contribution: dict[str, dict[str, float]]  # weight -> {dtype: measured proxy error}
    uniform: dict[str, Point | None]  # dtype -> point (None: not possible)
    tried: tuple[Point, ...]  # every configuration step 4 measured


def total_bytes(weights: Sequence[Weight], assignment: Assignment) -> int:
    """The weight bytes of the model with ``assignment`` (absent = float32)."""
    total = 0
    for w in weights:
        if w.quantizable:
            total += w.size * ITEMSIZE[assignment.get(w.name, "float32")]
        else:
            total += w.fixed_bytes
    return total


def two_byte_dtype(array: np.ndarray, name: str) -> str:
    """Step 1: float16 or uint16, whichever reconstructs ``array`` more closely."""
    flat = np.asarray(array, np.float32)
    if flat.size == 0:
        return "uint16"
    errors = {}
    for dtype in ("uint16", "float16"):
        try:
            stored, meta = quantization.quantize(flat, dtype, name=name)
        except ConversionError:
            continue  # float16 overflow: not a candidate
        errors[dtype] = float(np.max(np.abs(quantization.dequantize(stored, meta).astype(np.float64) - flat)))
    if "float16" in errors and errors["float16"] < errors.get("uint16", math.inf):
        return "float16"
    return "uint16"


class _Counter:
    """Counts evaluations and refuses to go past the cap."""

    def __init__(self, measure: Measure, cap: int, used: int):
        self.measure = measure
        self.cap = cap
        self.used = used

    def left(self) -> int:
        return self.cap - self.used

    def __call__(self, assignment: Assignment) -> tuple[float, float]:
        if self.used >= self.cap:
            raise AssertionError("evaluation cap exceeded")  # a bug in the plan below
        self.used += 1
        return self.measure(assignment)


def _units(weights: Sequence[Weight], cap: int) -> list[tuple[str, tuple[str, ...]]]:
    """(unit name, weight names): the largest weights alone, the rest as one group."""
    ranked = sorted((w for w in weights if w.quantizable and w.size), key=lambda w: (-w.size, w.name))
    room = (cap - _FIXED_EVALUATIONS - _VERIFY_RESERVE) // 2
    if room < 1:
        raise ConversionError(
            f"the evaluation cap {cap} is too small for the search (needs at least {_FIXED_EVALUATIONS + _VERIFY_RESERVE + 2})"
        )
    if len(ranked) <= room:
        return [(w.name, (w.name,)) for w in ranked]
    alone = ranked[: room - 1]
    rest = ranked[room - 1 :]
    return [(w.name, (w.name,)) for w in alone] + [(GROUP, tuple(w.name for w in rest))]


def _config(
    levels: Mapping[str, int], units: Mapping[str, tuple[str, ...]], two: Mapping[str, str]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for unit, level in levels.items():
        for name in units[unit]:
            if level == 1:
                out[name] = two[name]
            elif level == 2:
                out[name] = "uint8"
    return out


def search(
    weights: Sequence[Weight],
    arrays: Mapping[str, np.ndarray],
    measure: Measure,
    budget: float,
    *,
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS,
    evaluations_used: int = 1,
) -> Result:
    """Run steps 1-4 (module docstring); ``evaluations_used`` counts the reference run."""
    if not (budget >= 0.0):
        raise ConversionError(f"the error budget must be a number >= 0, got {budget}")
    quantizable = [w for w in weights if w.quantizable and w.size]
    two = {w.name: two_byte_dtype(arrays[w.name], w.name) for w in quantizable}
    count = _Counter(measure, max_evaluations, evaluations_used)

    uniform: dict[str, Point | None] = {"float32": Point(total_bytes(weights, {}), 0.0)}
    for dtype in ("float16", "uint16", "uint8"):
        if dtype == "float16" and any(
            float(np.max(np.abs(arrays[w.name]))) > float(np.finfo(np.float16).max) for w in quantizable
        ):
            uniform[dtype] = None  # a value beyond float16's range: tfjs cannot store it
            continue
        config = {w.name: dtype for w in quantizable}
        uniform[dtype] = Point(total_bytes(weights, config), count(config)[0])

    smallest = uniform["uint8"]
    if smallest is not None and smallest.error <= budget:  # no mix can be smaller
        return Result(
            assignment={w.name: "uint8" for w in sorted(quantizable, key=lambda w: w.name)},
            error=smallest.error,
            bytes=smallest.bytes,
            evaluations=count.used,
            units=0,
            grouped=(),
            contribution={},
            uniform=uniform,
            tried=(),
        )

    unit_list = _units(quantizable, max_evaluations)
    units = dict(unit_list)
    contribution: dict[str, dict[str, float]] = {}
    moves: list[tuple[float, float, str, int]] = []  # (-ratio, -saved, unit, level)
    for unit, names in unit_list:
        size = sum(w.size for w in quantizable if w.name in names)
        errors = []
        for level in (1, 2):
            errors.append(count(_config({unit: level}, units, two))[1])
        for name in names:
            contribution[name] = {two[name]: errors[0], "uint8": errors[1]}
        for level, saved, cost in ((1, 2 * size, errors[0]), (2, size, max(errors[1] - errors[0], 0.0))):
            ratio = math.inf if cost == 0.0 else saved / cost
            moves.append((-ratio, -float(saved), unit, level))
    moves.sort()

    def levels_after(k: int) -> dict[str, int]:
        levels: dict[str, int] = {}
        for _, _, unit, level in moves[:k]:
            levels[unit] = max(levels.get(unit, 0), level)
        return levels

    tried: list[Point] = []

    def check(levels: Mapping[str, int]) -> tuple[bool, float]:
        config = _config(levels, units, two)
        err = count(config)[0]
        tried.append(Point(total_bytes(weights, config), err))
        return err <= budget, err

    best_levels: dict[str, int] = {}
    best_error = 0.0
    ok, err = check(levels_after(len(moves))) if moves else (True, 0.0)
    if ok:
        best_levels, best_error = levels_after(len(moves)), err
        kept = len(moves)
    else:
        lo, hi = 0, len(moves)  # lo fits (nothing quantized: error 0), hi does not
        while hi - lo > 1 and count.left() > 0:
            mid = (lo + hi) // 2
            ok, err = check(levels_after(mid))
            if ok:
                lo, best_levels, best_error = mid, levels_after(mid), err
            else:
                hi = mid
        kept = hi
    for _, _, unit, level in moves[kept:]:
        if count.left() <= 0:
            break
        if best_levels.get(unit, 0) >= level:
            continue
        trial = dict(best_levels)
        trial[unit] = level
        ok, err = check(trial)
        if ok:
            best_levels, best_error = trial, err

    assignment = _config(best_levels, units, two)
    chosen = Point(total_bytes(weights, assignment), best_error)
    for dtype in ("uint8", "uint16", "float16"):
        point = uniform[dtype]
        if point is not None and point.error <= budget and point.bytes < chosen.bytes:
            assignment = {w.name: dtype for w in quantizable}
            chosen = point
            break
    grouped = units.get(GROUP, ())
    return Result(
        assignment=dict(sorted(assignment.items())),
        error=chosen.error,
        bytes=chosen.bytes,
        evaluations=count.used,
        units=len(unit_list),
        grouped=tuple(grouped),
        contribution=contribution,
        uniform=uniform,
        tried=tuple(tried),
    )
