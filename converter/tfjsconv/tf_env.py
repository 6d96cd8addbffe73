"""The one place that prepares the process before TensorFlow is imported.

The variables must be set before the first ``import tensorflow`` anywhere in the
process: C++ log level 2 keeps TF's INFO/WARNING start-up lines off stderr (errors stay
one line), and oneDNN's ISA-dependent kernels are disabled so grappler's constant folding
gives the same bytes on every machine. Callers' explicit settings win.

``import tensorflow`` also imports JAX when it is installed (TFLite's optional JAX
support, which the converter never uses): about 110 MB of RSS for nothing. So JAX is
hidden for the duration of that import only; ``import jax`` works normally afterwards
(the JAX conversion imports it itself).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

TF_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def configure() -> None:
    """Set the defaults (no import); entry points call this first."""
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


# Optional packages that TensorFlow imports eagerly if present but the converter never
# needs through TensorFlow.
_HIDDEN_DURING_IMPORT = ("jax",)


@contextlib.contextmanager
def _hidden(names: Iterable[str]) -> Iterator[None]:
    """Make ``names`` unimportable (``sys.modules[name] = None``) unless already loaded."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def import_tensorflow() -> Any:
    """``configure()`` then ``import tensorflow`` (without JAX); returns the module."""
    configure()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _hidden(_HIDDEN_DURING_IMPORT):
        import tensorflow as tf

    return tf


def exit_process(code: int) -> NoReturn:
    """End a console command; with TensorFlow loaded, without the interpreter's teardown.

    Finalizing a process that imported TensorFlow (module teardown, then TF's C++ static
    destructors) takes ~0.5 s on 2 cores, a sixth of converting a small model, and
    does nothing the output depends on. So: flush the streams, shut logging down, run
    the ``atexit`` handlers (``weakref.finalize`` and ``tempfile`` clean-ups among
    them), then ``os._exit``. Without TensorFlow, a plain ``sys.exit``.
    """
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing left to say
            pass
    os._exit(code)
