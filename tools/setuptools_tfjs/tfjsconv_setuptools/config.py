"""``[tool.tfjsconv.models.<name>]`` tables -> conversion jobs (pure, no setuptools).

Keeping the parsing separate from the setuptools command lets it be tested directly
and reused by other build backends. Every mistake is a one-line ConversionError that
names the table and the key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tfjsconv import api, formats
from tfjsconv.errors import ConversionError
from tfjsconv.options import ConversionOptions, patterns

MODELS_DIR = "tfjs_models"
# tfjs_web_package outputs (npm package directories a web server serves from the wheel).
WEB_DIR = "tfjs_web"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

# Keys copied to ConversionOptions as-is, with the type each must have: the build
# tools' options (tfjsconv.formats.OPTIONS) by kind.
_BOOL_KEYS = tuple(name for name, (kind, _) in formats.OPTIONS.items() if kind == "bool")
_LIST_KEYS = tuple(name for name, (kind, _) in formats.OPTIONS.items() if kind == "string_list")
_KNOWN_KEYS = frozenset(("src", "input_format", "output_format", "package", "web_package", *formats.OPTIONS))


@dataclass(frozen=True)
class ModelJob:
    """One model to convert: where from, into which package, with which options."""

    name: str
    src: str  # absolute path of the input model
    package: str
    options: ConversionOptions
    # Input files (relative to the project root) an sdist must carry.
    source_files: tuple[str, ...]
    # (npm package name, version) of the model's web package, or None.
    web: tuple[str, str] | None = None

    def output_dir(self, build_lib: str) -> str:
        return os.path.join(build_lib, *self.package.split("."), MODELS_DIR, self.name)

    def web_dir(self, build_lib: str) -> str:
        return os.path.join(build_lib, *self.package.split("."), WEB_DIR, self.name)


def load_pyproject(project_dir: str) -> Mapping[str, Any]:
    path = os.path.join(project_dir, "pyproject.toml")
    if not os.path.isfile(path):
        return {}
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConversionError(f"{path} is not valid TOML: {exc}") from None


def _files_under(project_dir: str, rel: str) -> tuple[str, ...]:
    full = os.path.join(project_dir, rel)
    if os.path.isfile(full):
        return (rel.replace(os.sep, "/"),)
    found = []
    for dirpath, dirnames, filenames in os.walk(full):
        dirnames.sort()
        for fn in sorted(filenames):
            found.append(os.path.relpath(os.path.join(dirpath, fn), project_dir).replace(os.sep, "/"))
    return tuple(found)


def _quant(value: Any, where: str):
    if value is True or isinstance(value, str):
        return patterns(value)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return patterns(value)
    raise ConversionError(f"{where} must be true, a pattern or a list of patterns, got {value!r}")


def _job(name: str, table: Any, project_dir: str, packages: Sequence[str]) -> ModelJob:
    where = f"[tool.tfjsconv.models.{name}]"
    if not _NAME_RE.match(name):
        raise ConversionError(f"{where}: model names may use letters, digits, '_', '-' and '.'")
    if not isinstance(table, dict):
        raise ConversionError(f"{where} must be a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise ConversionError(f"{where}: unknown key(s) {', '.join(unknown)}")
    src = table.get("src")
    if not isinstance(src, str) or not src:
        raise ConversionError(f"{where}: 'src' (the model path, relative to pyproject.toml) is required")
    if os.path.isabs(src) or ".." in src.replace("\\", "/").split("/"):
        raise ConversionError(f"{where}: 'src' must be a relative path inside the project: {src!r}")
    src_path = os.path.join(project_dir, src)
    if not os.path.exists(src_path):
        raise ConversionError(f"{where}: src does not exist: {src}")
    input_format = table.get("input_format")
    if not isinstance(input_format, str):
        raise ConversionError(f"{where}: 'input_format' (a string) is required")
    output_format = table.get("output_format")
    if output_format is not None and not isinstance(output_format, str):
        raise ConversionError(f"{where}: 'output_format' must be a string")

    top = sorted(p for p in packages if "." not in p)
    package = table.get("package")
    if package is None:
        if len(top) != 1:
            raise ConversionError(
                f"{where}: set 'package' (the distribution has {len(top)} top-level packages)"
            )
        package = top[0]
    elif package not in packages:
        raise ConversionError(f"{where}: package {package!r} is not one of the distribution's packages")

    kwargs: dict[str, Any] = {"input_format": input_format, "output_format": output_format}
    if "weight_shard_size_bytes" in table:
        size = table["weight_shard_size_bytes"]
        if not isinstance(size, int) or isinstance(size, bool):
            raise ConversionError(f"{where}: 'weight_shard_size_bytes' must be an integer")
        kwargs["weight_shard_size_bytes"] = size
    for dtype in formats.QUANTIZATION_DTYPES:
        key = f"quantize_{dtype}"
        if key in table:
            kwargs[key] = _quant(table[key], f"{where}: '{key}'")
    for key in _BOOL_KEYS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConversionError(f"{where}: '{key}' must be true or false")
            kwargs[key] = table[key]
    for key in _LIST_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConversionError(f"{where}: '{key}' must be a list of strings")
            kwargs[key] = tuple(value)
    if "signature_name" in table:
        if not isinstance(table["signature_name"], str):
            raise ConversionError(f"{where}: 'signature_name' must be a string")
        kwargs["signature_name"] = table["signature_name"]
    sources = list(_files_under(project_dir, src))
    metadata: list[tuple[str, Any]] = []
    meta = table.get("metadata", {})
    if not isinstance(meta, dict):
        raise ConversionError(f"{where}: 'metadata' must be a table of name = \"file.json\"")
    for key in sorted(meta):
        rel = meta[key]
        if not isinstance(rel, str):
            raise ConversionError(f"{where}: metadata {key!r} must be a JSON file path")
        try:
            with open(os.path.join(project_dir, rel), "rb") as f:
                metadata.append((key, json.loads(f.read().decode("utf-8"))))
        except OSError as exc:
            raise ConversionError(f"{where}: cannot read metadata file {rel}: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ConversionError(f"{where}: metadata file {rel} is not valid JSON") from None
        sources.append(rel.replace(os.sep, "/"))
    kwargs["metadata"] = tuple(metadata)
    web = _web_package(table.get("web_package"), output_format, where)
    kwargs["overwrite"] = True  # build_lib is scratch space; rebuilds replace old models
    options = ConversionOptions(**kwargs)
    try:
        # The converter's own check, now rather than halfway through the build.
        api.validate_options(options)
    except ConversionError as exc:
        raise ConversionError(f"{where}: {exc}") from None
    return ModelJob(
        name=name,
        src=os.path.abspath(src_path),
        package=package,
        options=options,
        source_files=tuple(sources),
        web=web,
    )


def _web_package(value: Any, output_format: str | None, where: str) -> tuple[str, str] | None:
    """``web_package = { name = "@acme/mlp", version = "1.0.0" }`` -> (name, version)."""
    if value is None:
        return None
    from tfjsconv.webpackage.package import check_name_version

    if not isinstance(value, dict) or set(value) != {"name", "version"}:
        raise ConversionError(f"{where}: 'web_package' must be a table with 'name' and 'version'")
    name, version = value["name"], value["version"]
    if not isinstance(name, str) or not isinstance(version, str):
        raise ConversionError(f"{where}: 'web_package' name and version must be strings")
    if output_format is not None and not output_format.startswith("tfjs_"):
        raise ConversionError(f"{where}: 'web_package' needs a tfjs_* output_format, not {output_format}")
    try:
        check_name_version(name, version)
    except ConversionError as exc:
        raise ConversionError(f"{where}: web_package: {exc}") from None
    return name, version


def model_jobs(
    project_dir: str, packages: Sequence[str], pyproject: Mapping[str, Any] | None = None
) -> list[ModelJob]:
    """The models declared in ``project_dir/pyproject.toml``, sorted by name."""
    data = load_pyproject(project_dir) if pyproject is None else pyproject
    models = data.get("tool", {}).get("tfjsconv", {}).get("models", {})
    if not isinstance(models, dict):
        raise ConversionError("[tool.tfjsconv.models] must be a table of tables")
    return [_job(name, models[name], project_dir, packages) for name in sorted(models)]
