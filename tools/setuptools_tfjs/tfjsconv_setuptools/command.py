"""setuptools commands that convert the models declared in pyproject.toml.

``build_tfjs`` converts each ``[tool.tfjsconv.models.<name>]`` into
``build_lib/<package>/tfjs_models/<name>/`` (and, with ``web_package``, its npm web
package into ``build_lib/<package>/tfjs_web/<name>/``); the ``build_py`` subclass runs it after
the normal build and lists its files in ``get_outputs()`` (so installers record them)
and the model sources in ``get_source_files()`` (so an sdist carries them).
Conversion output is deterministic, and bdist_wheel honours SOURCE_DATE_EPOCH, so two
builds of the same sources give byte-identical wheels.
"""

from __future__ import annotations

import os

from setuptools import Command
from setuptools.command.build_py import build_py as _build_py
from setuptools.errors import SetupError  # setuptools >= 59; the hook needs >= 61

from tfjsconv_setuptools.config import ModelJob, model_jobs


def _project_dir(dist) -> str:
    script = getattr(dist, "script_name", None) or "setup.py"
    return os.path.dirname(os.path.abspath(script)) or os.getcwd()


def _jobs(dist) -> list[ModelJob]:
    from tfjsconv.errors import ConversionError

    try:
        return model_jobs(_project_dir(dist), list(dist.packages or ()))
    except ConversionError as exc:
        raise SetupError(f"tfjsconv: {exc}") from None


def _walk(root: str) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames))
    return files


class build_tfjs(Command):
    """Convert the declared TensorFlow.js models into the build directory."""

    description = "convert models declared in [tool.tfjsconv.models] to TensorFlow.js"
    user_options = [("build-lib=", "d", "directory to build into")]

    build_lib: str | None

    def initialize_options(self) -> None:
        self.build_lib = None

    def _build_lib(self) -> str:
        assert self.build_lib is not None, "finalize_options sets build_lib"
        return self.build_lib

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def run(self) -> None:
        from tfjsconv import api
        from tfjsconv.errors import ConversionError

        for job in _jobs(self.distribution):
            out = job.output_dir(self._build_lib())
            self.announce(f"converting tfjs model {job.name!r} -> {out}", level=2)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            try:
                api.convert(job.src, out, job.options)
                if job.web is not None:
                    web = job.web_dir(self._build_lib())
                    self.announce(f"packaging tfjs model {job.name!r} for the web -> {web}", level=2)
                    os.makedirs(os.path.dirname(web), exist_ok=True)
                    api.web_package(out, web, *job.web, overwrite=True)
            except ConversionError as exc:
                raise SetupError(f"tfjsconv: model {job.name!r}: {exc}") from None

    def get_outputs(self) -> list[str]:
        outputs: list[str] = []
        for job in _jobs(self.distribution):
            outputs.extend(_walk(job.output_dir(self._build_lib())))
            if job.web is not None:
                outputs.extend(_walk(job.web_dir(self._build_lib())))
        return outputs

    def get_source_files(self) -> list[str]:
        sources: list[str] = []
        for job in _jobs(self.distribution):
            sources.extend(job.source_files)
        return sources


class build_py(_build_py):
    """``build_py`` that also converts the declared TensorFlow.js models."""

    def _build_tfjs(self) -> build_tfjs:
        # Works even when the project registered only build_py in its cmdclass.
        self.distribution.cmdclass.setdefault("build_tfjs", build_tfjs)
        return self.get_finalized_command("build_tfjs")

    def run(self) -> None:
        super().run()
        self._build_tfjs()
        self.run_command("build_tfjs")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return list(super().get_outputs(include_bytecode)) + self._build_tfjs().get_outputs()

    def get_source_files(self) -> list[str]:
        return list(super().get_source_files()) + self._build_tfjs().get_source_files()
