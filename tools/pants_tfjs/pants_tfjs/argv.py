"""``tfjs_model`` field values -> the converter's command line (no Pants imports).

The Pants rule is a thin shell around this module so the translation (which decides
the cache key and the output bytes) can be unit-tested without Pants, and so it stays
in step with the Bazel rule (rules/private/tfjs_model.bzl): same fields, same
defaults, same flags in the same order. Runs on Pants' Python 3.9 interpreter.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

# The converter's tables and check, generated from tfjsconv/formats.py.
from pants_tfjs.formats import (
    ACTION_ENV,
    DEFAULT_SHARD_SIZE_BYTES,
    INPUT_FORMATS,
    MAIN_OUTPUT,
    MODEL_JSON,
    OPTIONS,
    OUTPUT_FORMATS,
    QUANTIZATION_DTYPES,
    SAVED_MODEL_INPUTS,
    TFJS_OUTPUTS,
    output_format_problem,
    problem,
)

__all__ = [
    "ACTION_ENV",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "DEFAULT_SHARD_SIZE_BYTES",
    "InvalidTfjsModel",
    "TfjsModelSpec",
    "converter_args",
    "input_path",
    "output_paths",
    "validate",
    "web_package_args",
]


class InvalidTfjsModel(ValueError):
    """A ``tfjs_model`` target whose fields cannot work; the message names the target."""


@dataclass(frozen=True)
class TfjsModelSpec:
    """The field values of one ``tfjs_model`` target (defaults as in the Bazel rule)."""

    address: str
    input_format: str
    output_format: Optional[str] = None
    src: Optional[str] = None  # model root relative to the BUILD file's directory
    weight_shard_size_bytes: int = DEFAULT_SHARD_SIZE_BYTES
    quantize_float16: Tuple[str, ...] = ()
    quantize_uint8: Tuple[str, ...] = ()
    quantize_uint16: Tuple[str, ...] = ()
    metadata: Tuple[Tuple[str, str], ...] = ()  # (name, JSON file relative to BUILD dir)
    signature_name: Optional[str] = None
    saved_model_tags: Tuple[str, ...] = ("serve",)
    output_node_names: Tuple[str, ...] = ()
    strip_debug_ops: bool = True
    control_flow_v2: bool = False
    use_structured_outputs_names: bool = False
    split_weights_by_layer: bool = False
    skip_op_check: bool = False
    # tfjs_web_package of the converted model (both or neither; tfjs_* outputs only).
    web_package_name: Optional[str] = None
    web_package_version: Optional[str] = None

    def fail(self, message: str) -> "InvalidTfjsModel":
        return InvalidTfjsModel(f"{self.address}: {message}")


def resolved_output_format(spec: TfjsModelSpec) -> str:
    message, out = output_format_problem(spec.input_format, spec.output_format)
    if message:
        raise spec.fail(message)
    return out


def validate(spec: TfjsModelSpec) -> str:
    """The converter's own check (``formats.problem``), then what only a target must
    check (list values become one comma-separated flag); return the output format."""
    values = {name: getattr(spec, name) for name in OPTIONS if name != "metadata"}
    message = problem(spec.input_format, spec.output_format, values)
    if message:
        raise spec.fail(message)
    out = resolved_output_format(spec)
    for what, values_ in (
        ("saved_model_tags", spec.saved_model_tags),
        ("output_node_names", spec.output_node_names),
        *((f"quantize_{d}", getattr(spec, f"quantize_{d}")) for d in QUANTIZATION_DTYPES),
    ):
        for value in values_:
            if not value or "," in value:
                raise spec.fail(f"{what} entries must be non-empty and contain no ',': {value!r}")
    for name, _path in spec.metadata:
        if not name or ":" in name or "," in name:
            raise spec.fail(f"metadata names must be non-empty and contain no ':' or ',': {name!r}")
    return out


def input_path(spec: TfjsModelSpec, spec_path: str, files: Sequence[str]) -> str:
    """The path the converter reads, given the target's source files (sandbox paths).

    ``src`` wins when set; otherwise a single file is the model, and a file set must
    hold exactly one ``saved_model.pb`` (SavedModel formats) or ``model.json``.
    """
    metadata_files = {posixpath.normpath(posixpath.join(spec_path, p)) for _, p in spec.metadata}
    model_files = sorted(f for f in files if f not in metadata_files)
    if spec.src:
        path = posixpath.normpath(posixpath.join(spec_path, spec.src))
        if not any(f == path or f.startswith(path + "/") for f in model_files):
            raise spec.fail(f"src {spec.src!r} matches none of the target's sources")
        return path
    if not model_files:
        raise spec.fail("sources match no model files")
    if len(model_files) == 1:
        return model_files[0]
    if spec.input_format in SAVED_MODEL_INPUTS:
        what = "saved_model.pb"
    elif spec.input_format == "tfjs_layers_model":
        what = MODEL_JSON
    else:
        raise spec.fail(
            f"sources must be a single file for input_format {spec.input_format} "
            f"(got {len(model_files)}); or set src"
        )
    names = {"saved_model.pb", "saved_model.pbtxt"} if what == "saved_model.pb" else {what}
    markers = [f for f in model_files if posixpath.basename(f) in names]
    if len(markers) != 1:
        raise spec.fail(f"sources must contain exactly one {what} (found {len(markers)}); or set src")
    root = posixpath.dirname(markers[0])
    return markers[0] if what == MODEL_JSON else root


def output_paths(spec: TfjsModelSpec, spec_path: str, target_name: str) -> Tuple[str, str]:
    """(output directory, path given to the converter), like the Bazel rule's layout."""
    out = validate(spec)
    out_dir = posixpath.join(spec_path, target_name) if spec_path else target_name
    if out in TFJS_OUTPUTS:
        return out_dir, out_dir
    return out_dir, posixpath.join(out_dir, MAIN_OUTPUT[out])


def converter_args(spec: TfjsModelSpec, spec_path: str, input_path_: str, output_path: str) -> List[str]:
    """The converter flags, in the Bazel rule's order (so both tools agree on keys)."""
    out = validate(spec)
    args = ["--input_format", spec.input_format, "--output_format", out]
    if spec.weight_shard_size_bytes != DEFAULT_SHARD_SIZE_BYTES:
        args += ["--weight_shard_size_bytes", str(spec.weight_shard_size_bytes)]
    for dtype in QUANTIZATION_DTYPES:
        patterns = getattr(spec, f"quantize_{dtype}")
        if patterns:
            args.append(f"--quantize_{dtype}={','.join(patterns)}")
    if spec.metadata:
        entries = sorted(
            (name, posixpath.normpath(posixpath.join(spec_path, path))) for name, path in spec.metadata
        )
        names = [n for n, _ in entries]
        if len(set(names)) != len(names):
            raise spec.fail("metadata names must be unique")
        args += ["--metadata", ",".join(f"{n}:{p}" for n, p in entries)]
    if spec.signature_name:
        args += ["--signature_name", spec.signature_name]
    if spec.input_format in SAVED_MODEL_INPUTS:
        args += ["--saved_model_tags", ",".join(spec.saved_model_tags)]
    if spec.output_node_names:
        args += ["--output_node_names", ",".join(spec.output_node_names)]
    if out == "tfjs_graph_model":
        args.append(f"--strip_debug_ops={'true' if spec.strip_debug_ops else 'false'}")
        args.append(f"--control_flow_v2={'true' if spec.control_flow_v2 else 'false'}")
        args.append(
            f"--use_structured_outputs_names={'true' if spec.use_structured_outputs_names else 'false'}"
        )
    if spec.split_weights_by_layer:
        args.append("--split_weights_by_layer")
    if spec.skip_op_check:
        args.append("--skip_op_check")
    args += ["--overwrite", "--quiet", input_path_, output_path]
    return args


def web_package_args(
    spec: TfjsModelSpec, spec_path: str, target_name: str
) -> Optional[Tuple[str, List[str]]]:
    """(output directory ``<dir>/<target>_web``, ``tfjs_web_package`` arguments) when the
    target asks for a web package, else None. The packaging checks name and version."""
    name, version = spec.web_package_name, spec.web_package_version
    if not name and not version:
        return None
    if not (name and version):
        raise spec.fail("set both web_package_name and web_package_version, or neither")
    out = validate(spec)
    if out not in TFJS_OUTPUTS:
        raise spec.fail(f"web_package_name needs a tfjs_* output_format, not {out}")
    model_dir, _ = output_paths(spec, spec_path, target_name)
    web_dir = model_dir + "_web"
    return web_dir, [model_dir, web_dir, "--package_name", name, "--version", version, "--quiet"]


# Pinned process environment: the same variables the Bazel action sets.
PROCESS_ENV = ACTION_ENV
