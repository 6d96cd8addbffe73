"""The answers turned into the exact ``tensorflowjs_converter`` command line and the
equivalent Bazel target, printed so the conversion can be repeated without the wizard."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from collections.abc import Sequence
from typing import Any

from tfjsconv import formats
from tfjsconv.options import DEFAULT_OUTPUT_FORMAT, DEFAULT_SHARD_SIZE_BYTES
from tfjsconv.wizard.detect import CONVERTER, URL


@dataclasses.dataclass(frozen=True)
class Answers:
    """Everything the questions produce; ``build_argv`` turns it into flags."""

    input_path: str
    input_format: str
    output_path: str
    output_format: str | None = None
    saved_model_tags: tuple[str, ...] = ()
    signature_name: str | None = None
    output_node_names: tuple[str, ...] = ()
    quantize_dtype: str | None = None
    quantize_patterns: tuple[str, ...] = ()
    weight_shard_size_bytes: int = DEFAULT_SHARD_SIZE_BYTES
    split_weights_by_layer: bool = False
    skip_op_check: bool = False
    strip_debug_ops: bool = True
    control_flow_v2: bool = False
    metadata: tuple[tuple[str, str], ...] = ()
    overwrite: bool = False

    @property
    def resolved_output_format(self) -> str:
        return self.output_format or DEFAULT_OUTPUT_FORMAT[self.input_format]


def build_argv(a: Answers) -> list[str]:
    """Converter arguments for ``a``: flags in a fixed order, then the two paths.

    Only non-default values are emitted, so the command stays short and readable.
    """
    out_fmt = a.resolved_output_format
    argv = [f"--input_format={a.input_format}"]
    if a.output_format and a.output_format != DEFAULT_OUTPUT_FORMAT.get(a.input_format):
        argv.append(f"--output_format={a.output_format}")
    if a.saved_model_tags and a.saved_model_tags != ("serve",):
        argv.append("--saved_model_tags=" + ",".join(a.saved_model_tags))
    if a.signature_name:
        argv.append(f"--signature_name={a.signature_name}")
    if a.output_node_names:
        argv.append("--output_node_names=" + ",".join(a.output_node_names))
    if a.quantize_dtype:
        argv.append(f"--quantize_{a.quantize_dtype}=" + ",".join(a.quantize_patterns or ("*",)))
    if a.weight_shard_size_bytes != DEFAULT_SHARD_SIZE_BYTES:
        argv.append(f"--weight_shard_size_bytes={a.weight_shard_size_bytes}")
    if a.split_weights_by_layer:
        argv.append("--split_weights_by_layer")
    if out_fmt == "tfjs_graph_model":
        if a.skip_op_check:
            argv.append("--skip_op_check")
        if not a.strip_debug_ops:
            argv.append("--strip_debug_ops=false")
        if a.control_flow_v2:
            argv.append("--control_flow_v2=true")
    if a.metadata:
        argv.append("--metadata=" + ",".join(f"{name}:{p}" for name, p in a.metadata))
    if a.overwrite:
        argv.append("--overwrite")
    argv += [a.input_path, a.output_path]
    return argv


def format_command(argv: Sequence[str]) -> str:
    """The shell command a person can paste: every argument ``shlex.quote``d."""
    return " ".join([CONVERTER] + [shlex.quote(arg) for arg in argv])


def _starlark(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # Starlark string escapes match JSON's for printable text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_starlark(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_starlark(k)}: {_starlark(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Starlark form for {value!r}")


def target_name(output_path: str) -> str:
    """A valid Bazel target name from the output path ('web/My Model' -> 'my_model')."""
    base = os.path.basename(os.path.normpath(output_path)) or "model"
    base = os.path.splitext(base)[0] if base.lower().endswith((".h5", ".keras")) else base
    name = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_").lower()
    return name or "model"


def package_path(path: str, package_dir: str | None) -> tuple[str, bool]:
    """``path`` relative to the BUILD file's directory, and whether it lies inside it.

    Bazel labels cannot be absolute or climb out of the package, so paths outside are
    returned unchanged and flagged for a comment.
    """
    if URL.match(path) or package_dir is None:
        return path, True
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(package_dir)).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../"):
        return path, False
    return rel, True


def rule_attributes(flags: Sequence[str]) -> list[tuple[str, Any]]:
    """Converter flags -> the ``tfjs_model`` attributes that mean the same, in order.

    The rule's attributes are named like the flags (``tfjsconv.formats.OPTIONS`` says
    each one's kind), so the command is the one place the wizard spells them out.
    """
    from tfjsconv.cli import parse_bool

    attrs: list[tuple[str, Any]] = []
    for flag in flags:
        name, eq, value = flag[2:].partition("=")
        if name in ("input_format", "output_format"):
            attrs.append((name, value))
            continue
        if name not in formats.OPTIONS:
            continue  # --overwrite and friends: not a property of the target
        kind = formats.OPTIONS[name][0]
        if not eq:
            attrs.append((name, True))
        elif kind == "int":
            attrs.append((name, int(value)))
        elif kind == "bool":
            attrs.append((name, parse_bool(value)))
        elif kind in ("string_list", "patterns"):
            attrs.append((name, value.split(",")))
        elif kind == "metadata":
            attrs.append((name, dict(item.split(":", 1) for item in value.split(","))))
        else:
            attrs.append((name, value))
    return attrs


def bazel_target(a: Answers, package_dir: str | None = None) -> str:
    """The ``tfjs_model`` target equivalent to the command (attributes named like the flags).

    With ``package_dir`` (where the BUILD file would live), paths become package-relative;
    a SavedModel directory gets a ``filegroup`` because ``src`` is a single label.
    """
    name = target_name(a.output_path)
    src, inside = package_path(a.input_path, package_dir)
    prelude = ""
    if not inside:
        prelude += "# NOTE: src must live in this package; copy the model here and fix the path.\n"
    if os.path.isdir(a.input_path) and not URL.match(a.input_path):
        files = f"{name}_src"
        prelude += (
            f"filegroup(\n    name = {_starlark(files)},\n"
            f"    srcs = glob([{_starlark(src.rstrip('/') + '/**')}]),\n)\n\n"
        )
        src = ":" + files
    attrs: list[tuple[str, Any]] = [("name", name), ("src", src)]
    for key, value in rule_attributes(build_argv(a)[:-2]):
        if key == "metadata":  # labels: package-relative paths
            value = {k: package_path(p, package_dir)[0] for k, p in value.items()}
        attrs.append((key, value))
    body = "".join(f"    {key} = {_starlark(value)},\n" for key, value in attrs)
    return f'load("@rules_tfjs//rules:defs.bzl", "tfjs_model")\n\n{prelude}tfjs_model(\n{body})'
