"""Progress lines for people at a terminal, silence for build logs.

A conversion takes seconds (importing TensorFlow alone costs ~2.5 s), so a person at a
terminal wants to see that something happens; Bazel and CI logs want nothing but errors.
``for_stream`` picks the right reporter from the stream itself, so callers never branch.
``summarize`` describes what was written, read back from disk (the model.json on disk is
the truth, not what the converter meant to write).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import IO, Protocol

from tfjsconv.formats import MODEL_JSON


class Reporter(Protocol):
    """What the CLI, the wizard and the Bazel worker report through."""

    def step(self, msg: str) -> None:
        """One stage of the conversion has started (e.g. 'loading the SavedModel')."""

    def summary(self, output_path: str) -> None:
        """The conversion finished and wrote ``output_path``."""


class QuietReporter:
    """Prints nothing: for logs that are read only when something failed."""

    def step(self, msg: str) -> None:
        return None

    def summary(self, output_path: str) -> None:
        return None


class TtyReporter:
    """One line per step, prefixed with the seconds elapsed since the reporter started."""

    def __init__(self, stream: IO[str], clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._clock = clock
        self._start = clock()

    def step(self, msg: str) -> None:
        elapsed = self._clock() - self._start
        self._stream.write(f"[{elapsed:6.1f}s] {msg}\n")
        self._stream.flush()

    def summary(self, output_path: str) -> None:
        self._stream.write(summarize(output_path) + "\n")
        self._stream.flush()


def _is_tty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # closed or detached streams
        return False


def for_stream(
    stream: IO[str], quiet: bool | None = None, clock: Callable[[], float] = time.monotonic
) -> Reporter:
    """A ``TtyReporter`` when ``stream`` is a terminal, else a ``QuietReporter``.

    ``quiet=True`` / ``quiet=False`` override the detection (``--quiet``, tests).
    """
    if quiet is None:
        quiet = not _is_tty(stream)
    return QuietReporter() if quiet else TtyReporter(stream, clock)


def human_size(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``; exact bytes below 1 KiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024.0
        if value < 1024.0 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _files_with_sizes(output_path: str) -> list[tuple[str, int]]:
    """(relative path, size) of every file under ``output_path``, sorted by path."""
    if os.path.isfile(output_path):
        return [(os.path.basename(output_path), os.path.getsize(output_path))]
    found = []
    for root, dirs, files in os.walk(output_path):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, output_path).replace(os.sep, "/")
            found.append((rel, os.path.getsize(full)))
    return sorted(found)


def quantization_dtypes(model_json: dict) -> list[str]:
    """Sorted quantized storage dtypes ('float16', 'uint8', ...) named in the manifest."""
    dtypes = set()
    for group in model_json.get("weightsManifest") or []:
        for weight in group.get("weights") or []:
            q = weight.get("quantization")
            if isinstance(q, dict) and q.get("dtype"):
                dtypes.add(str(q["dtype"]))
    return sorted(dtypes)


def _graph_nodes(model_json: dict) -> list[dict]:
    topology = model_json.get("modelTopology") or {}
    nodes = list(topology.get("node") or [])
    for fn in (topology.get("library") or {}).get("function") or []:
        nodes.extend(fn.get("nodeDef") or [])
    return nodes


def _layers(model_json: dict) -> Sequence[dict]:
    topology = model_json.get("modelTopology") or {}
    model_config = topology.get("model_config") or topology
    config = model_config.get("config") if isinstance(model_config, dict) else None
    if isinstance(config, list):  # very old Sequential configs are a bare list
        return config
    if isinstance(config, dict):
        return config.get("layers") or []
    return []


def describe_model(model_json: dict) -> str:
    """'graph model: 12 nodes (7 op types)' or 'layers model: 3 layers'."""
    fmt = model_json.get("format")
    topology = model_json.get("modelTopology") or {}
    if fmt == "graph-model" or "node" in topology:
        nodes = _graph_nodes(model_json)
        op_types = {n.get("op") for n in nodes if n.get("op")}
        return f"graph model: {len(nodes)} nodes ({len(op_types)} op types)"
    layers = _layers(model_json)
    return f"layers model: {len(layers)} layers"


def summarize(output_path: str) -> str:
    """A short, deterministic description of a written model, for people.

    Lists every output file with its size, the total, the quantization dtypes found in
    the weights manifest and the graph node / layer count.
    """
    files = _files_with_sizes(output_path)
    width = max((len(name) for name, _ in files), default=0)
    lines = [f"Wrote {output_path}:"]
    for name, size in files:
        lines.append(f"  {name.ljust(width)}  {human_size(size):>10}")
    total = sum(size for _, size in files)
    lines.append(
        f"Total: {human_size(total)} ({total} bytes) in {len(files)} file{'' if len(files) == 1 else 's'}"
    )
    model_json_path = os.path.join(output_path, MODEL_JSON)
    if os.path.isdir(output_path) and os.path.isfile(model_json_path):
        from tfjsconv.model_json import load_model_json

        model_json = load_model_json(model_json_path)
        lines.append(describe_model(model_json))
        dtypes = quantization_dtypes(model_json)
        lines.append("Quantization: " + (", ".join(dtypes) if dtypes else "none"))
    return "\n".join(lines)
