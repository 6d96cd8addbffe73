"""Errors the CLI turns into a one-line message and a non-zero exit (no traceback).

Anything raised that is *not* a ``ConversionError`` is a bug in tfjsconv and is
reported with a traceback.
"""

from __future__ import annotations

from typing import Iterable


class ConversionError(Exception):
    """A problem with the user's input, flags or environment. Exit code 1."""

    exit_code = 1


class UsageError(ConversionError):
    """Wrong or conflicting command-line flags. Exit code 2, like argparse."""

    exit_code = 2


class UnsupportedOpsError(ConversionError):
    """The graph uses ops TensorFlow.js cannot run; ``ops`` is sorted."""

    def __init__(self, ops: Iterable[str], stage: str = "before optimization"):
        self.ops = sorted(set(ops))
        self.stage = stage
        super().__init__(
            f"Unsupported Ops in the model {stage}: {', '.join(self.ops)}"
        )
