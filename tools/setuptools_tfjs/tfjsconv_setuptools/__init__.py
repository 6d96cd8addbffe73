"""Convert TensorFlow.js models while building a Python package, and find them later.

In ``pyproject.toml``::

    [tool.setuptools.cmdclass]
    build_py = "tfjsconv_setuptools.build_py"
    build_tfjs = "tfjsconv_setuptools.build_tfjs"

    [tool.tfjsconv.models.classifier]
    src = "models/classifier.h5"
    input_format = "keras"

At run time: ``tfjsconv_setuptools.model_path("mypkg", "classifier")``. The setuptools
commands are imported lazily so that the run-time helper needs only the standard
library.
"""

from tfjsconv_setuptools.runtime import model_path

__all__ = ["build_py", "build_tfjs", "cmdclass", "model_path"]


def cmdclass() -> dict:
    """For ``setup.py``: ``setup(cmdclass=tfjsconv_setuptools.cmdclass(), ...)``."""
    from tfjsconv_setuptools.command import build_py, build_tfjs

    return {"build_py": build_py, "build_tfjs": build_tfjs}


def __getattr__(name: str):
    if name in ("build_py", "build_tfjs"):
        from tfjsconv_setuptools import command

        return getattr(command, name)
    raise AttributeError(f"module 'tfjsconv_setuptools' has no attribute {name!r}")
