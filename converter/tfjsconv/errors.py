"""Errors the CLI turns into a one-line message and a non-zero exit (no traceback).

Anything raised that is *not* a ``ConversionError`` is a bug in tfjsconv and is
reported with a traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import IO

# Exit code of every tfjsconv program (converter, wizard, tfjs_pb2json, the Bazel
# action) when it fails on a bug rather than on the user's input (EX_SOFTWARE).
INTERNAL_ERROR_EXIT_CODE = 70


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
        super().__init__(f"Unsupported Ops in the model {stage}: {', '.join(self.ops)}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message: library errors quoted in a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def report_internal_error(prog: str, stream: IO[str]) -> int:
    """Print the current exception's traceback and a one-line verdict; return the exit code.

    Call from an ``except Exception`` block: anything that is not a ConversionError is
    a bug, and the traceback is what a bug report needs.
    """
    traceback.print_exc(file=stream)
    print(
        f"{prog}: internal error (a bug in tfjsconv; please report it with the traceback above)", file=stream
    )
    return INTERNAL_ERROR_EXIT_CODE
