"""The inputs the error budget is measured on: read from a file, or generated.

A calibration file is ``.npz`` (one array per model input, keyed by input name) or
``.json`` (an object ``{input name: nested list}``). Every array must name a model
input, have the input's rank and fixed dimensions, a dtype of the input's kind (float
data for float inputs, integer data for integer inputs), one shared batch size >= 1,
and only finite values. Anything else is a ``ConversionError`` naming the problem.

Without a file, inputs are generated from the signature: ``GENERATED_BATCH`` samples,
unknown dimensions set to ``GENERATED_UNKNOWN_DIM``, float inputs uniform in [-1, 1),
integer inputs uniform in [0, 10), bool inputs fair coin flips, all from numpy's PCG64
seeded with ``GENERATED_SEED`` (the same bytes on every machine).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np

from tfjsconv.errors import ConversionError

GENERATED_BATCH = 8
GENERATED_UNKNOWN_DIM = 8
GENERATED_SEED = 0
GENERATED_DESCRIPTION = (
    f"generated from the signature: {GENERATED_BATCH} samples, unknown dimensions = "
    f"{GENERATED_UNKNOWN_DIM}, float uniform in [-1, 1), int uniform in [0, 10), bool coin "
    f"flips, numpy PCG64 seed {GENERATED_SEED}"
)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its feed name, shape (None = any size) and numpy dtype name."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Arrays in input order, and where they came from (for the report)."""

    arrays: tuple[np.ndarray, ...]
    source: str

    @property
    def batch(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays and self.arrays[0].ndim else 1


def _kind(dtype: str) -> str:
    kind = np.dtype(dtype).kind
    return {"f": "float", "i": "int", "u": "int", "b": "bool"}.get(kind, kind)


def generate(specs: Sequence[InputSpec]) -> Calibration:
    """Deterministic inputs from the signature (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64(GENERATED_SEED))
    arrays: list[np.ndarray] = []
    for spec in specs:
        dims = list(spec.shape)
        if dims:
            dims[0] = GENERATED_BATCH
        shape = tuple(GENERATED_UNKNOWN_DIM if d is None else int(d) for d in dims)
        kind = _kind(spec.dtype)
        if kind == "float":
            arrays.append(rng.uniform(-1.0, 1.0, shape).astype(spec.dtype))
        elif kind == "int":
            arrays.append(rng.integers(0, 10, shape).astype(spec.dtype))
        elif kind == "bool":
            arrays.append(rng.integers(0, 2, shape).astype(bool))
        else:
            raise ConversionError(
                f"cannot generate calibration inputs for input {spec.name!r} of dtype {spec.dtype}"
            )
    return Calibration(tuple(arrays), GENERATED_DESCRIPTION)


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(f"calibration file {path} is not a readable .npz: {reason}") from None


def _read_json(path: str, specs: Sequence[InputSpec]) -> dict[str, np.ndarray]:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConversionError(f"calibration file {path} is not valid JSON: {reason}") from None
    if not isinstance(obj, dict):
        raise ConversionError(f"calibration file {path} must hold a JSON object {{input name: nested list}}")
    dtypes = {s.name: s.dtype for s in specs}
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConversionError(
                f"calibration input {name!r} in {path} is not a rectangular list of numbers"
            ) from None
        want = dtypes.get(name)
        if want is not None and _kind(want) in ("int", "bool") and np.isfinite(array).all():
            if not np.array_equal(array, np.round(array)):
                raise ConversionError(
                    f"calibration input {name!r} has non-integer values but the model input is {want}"
                )
            array = array.astype(want)
        elif want is not None and _kind(want) == "float":
            array = array.astype(want)
        out[name] = array
    return out


def load(path: str, specs: Sequence[InputSpec]) -> Calibration:
    """Read and check a calibration file against the model's inputs."""
    if not os.path.isfile(path):
        raise ConversionError(f"calibration file not found: {path}")
    if os.path.getsize(path) == 0:
        raise ConversionError(f"calibration file {path} is empty")
    if path.endswith(".npz"):
        found = _read_npz(path)
    elif path.endswith(".json"):
        found = _read_json(path, specs)
    else:
        raise ConversionError(f"calibration file {path} must be .npz or .json")
    return check(found, specs, path)


def check(found: Mapping[str, np.ndarray], specs: Sequence[InputSpec], path: str) -> Calibration:
    """Names, ranks, dims, dtype kinds, batch size and finiteness (module docstring)."""
    names = [s.name for s in specs]
    extra = sorted(set(found) - set(names))
    if extra:
        raise ConversionError(
            f"calibration file {path} has input {extra[0]!r}, which the model does not have "
            f"(inputs: {', '.join(names)})"
        )
    missing = [n for n in names if n not in found]
    if missing:
        raise ConversionError(f"calibration file {path} has no data for model input {missing[0]!r}")
    arrays: list[np.ndarray] = []
    batch: int | None = None
    for spec in specs:
        array = found[spec.name]
        want, got = _kind(spec.dtype), _kind(array.dtype.name)
        if want != got:
            raise ConversionError(
                f"calibration input {spec.name!r} has dtype {array.dtype.name}, the model input is {spec.dtype}"
            )
        if array.ndim != len(spec.shape) or any(
            d is not None and i > 0 and d != array.shape[i] for i, d in enumerate(spec.shape)
        ):
            expected = (
                "["
                + ", ".join("?" if d is None or i == 0 else str(d) for i, d in enumerate(spec.shape))
                + "]"
            )
            raise ConversionError(
                f"calibration input {spec.name!r} has shape {list(array.shape)}, the model input is {expected}"
            )
        if array.ndim == 0 or array.shape[0] == 0:
            raise ConversionError(f"calibration input {spec.name!r} holds no samples")
        if batch is None:
            batch = int(array.shape[0])
        elif array.shape[0] != batch:
            raise ConversionError(
                f"calibration inputs have different batch sizes ({batch} and {array.shape[0]} for {spec.name!r})"
            )
        if got == "float" and not np.isfinite(array).all():
            raise ConversionError(f"calibration input {spec.name!r} contains NaN or Infinity")
        arrays.append(np.ascontiguousarray(array.astype(spec.dtype, copy=False)))
    return Calibration(tuple(arrays), f"{os.path.basename(path)}: {batch} samples")
