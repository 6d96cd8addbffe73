"""The one place that prepares the process before TensorFlow is imported.

The variables must be set before the first ``import tensorflow`` anywhere in the
process: C++ log level 2 keeps TF's INFO/WARNING start-up lines off stderr (errors stay
one line), and oneDNN's ISA-dependent kernels are disabled so grappler's constant folding
gives the same bytes on every machine. Callers' explicit settings win.
"""

from __future__ import annotations

import os
from typing import Any

TF_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def configure() -> None:
    """Set the defaults (no import); entry points call this first."""
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def import_tensorflow() -> Any:
    """``configure()`` then ``import tensorflow``; returns the module."""
    configure()
    import tensorflow as tf

    return tf
