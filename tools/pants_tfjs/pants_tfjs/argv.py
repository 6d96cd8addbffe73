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

INPUT_FORMATS = (
    "keras", "keras_keras", "keras_saved_model", "tf_frozen_model", "tf_hub",
    "tf_saved_model", "tfjs_layers_model",
)
OUTPUT_FORMATS = ("keras", "keras_keras", "keras_saved_model", "tfjs_graph_model", "tfjs_layers_model")
DEFAULT_OUTPUT_FORMAT = {
    "keras": "tfjs_layers_model",
    "keras_keras": "tfjs_layers_model",
    "keras_saved_model": "tfjs_layers_model",
    "tf_frozen_model": "tfjs_graph_model",
    "tf_hub": "tfjs_graph_model",
    "tf_saved_model": "tfjs_graph_model",
    "tfjs_layers_model": "keras",
}
SUPPORTED_PAIRS = frozenset(
    [
        ("keras", "tfjs_layers_model"), ("keras", "tfjs_graph_model"),
        ("keras_keras", "tfjs_layers_model"), ("keras_keras", "tfjs_graph_model"),
        ("keras_saved_model", "tfjs_layers_model"), ("tf_frozen_model", "tfjs_graph_model"),
        ("tf_hub", "tfjs_graph_model"), ("tf_saved_model", "tfjs_graph_model"),
        ("tfjs_layers_model", "keras"), ("tfjs_layers_model", "keras_keras"),
        ("tfjs_layers_model", "keras_saved_model"), ("tfjs_layers_model", "tfjs_graph_model"),
        ("tfjs_layers_model", "tfjs_layers_model"),
    ]
)
MAIN_OUTPUT = {
    "keras": "model.h5",
    "keras_keras": "model.keras",
    "keras_saved_model": "saved_model",
    "tfjs_graph_model": "model.json",
    "tfjs_layers_model": "model.json",
}
QUANTIZATION_DTYPES = ("float16", "uint8", "uint16")
DEFAULT_SHARD_SIZE_BYTES = 4194304


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

    def fail(self, message: str) -> "InvalidTfjsModel":
        return InvalidTfjsModel(f"{self.address}: {message}")


def resolved_output_format(spec: TfjsModelSpec) -> str:
    if spec.input_format not in INPUT_FORMATS:
        raise spec.fail(
            f"unknown input_format {spec.input_format!r}; choose one of: {', '.join(INPUT_FORMATS)}"
        )
    out = spec.output_format or DEFAULT_OUTPUT_FORMAT[spec.input_format]
    if out not in OUTPUT_FORMATS:
        raise spec.fail(f"unknown output_format {out!r}; choose one of: {', '.join(OUTPUT_FORMATS)}")
    if (spec.input_format, out) not in SUPPORTED_PAIRS:
        raise spec.fail(f"unsupported input_format/output_format pair: {spec.input_format} -> {out}")
    return out


def validate(spec: TfjsModelSpec) -> str:
    """Check flag combinations the way the Bazel rule does; return the output format."""
    out = resolved_output_format(spec)
    if spec.weight_shard_size_bytes <= 0:
        raise spec.fail(
            f"weight_shard_size_bytes must be a positive integer, got {spec.weight_shard_size_bytes}"
        )
    if spec.weight_shard_size_bytes != DEFAULT_SHARD_SIZE_BYTES and out not in (
        "tfjs_layers_model", "tfjs_graph_model"
    ):
        raise spec.fail("weight_shard_size_bytes applies only to tfjs_layers_model and tfjs_graph_model outputs")
    if spec.input_format == "tf_frozen_model" and not spec.output_node_names:
        raise spec.fail('output_node_names is required for input_format "tf_frozen_model"')
    if spec.signature_name and spec.input_format not in ("tf_saved_model", "tf_hub"):
        raise spec.fail(
            f"signature_name applies only to the tf_saved_model and tf_hub input formats, not {spec.input_format}"
        )
    if spec.control_flow_v2 and out != "tfjs_graph_model":
        raise spec.fail(f"control_flow_v2 applies only to the tfjs_graph_model output format, not {out}")
    if spec.split_weights_by_layer and out != "tfjs_layers_model":
        raise spec.fail("split_weights_by_layer applies only to the tfjs_layers_model output format")
    quantized = any(getattr(spec, f"quantize_{d}") for d in QUANTIZATION_DTYPES)
    if quantized and out == "keras_saved_model":
        raise spec.fail("quantization does not apply to the keras_saved_model output format")
    for what, values in (
        ("saved_model_tags", spec.saved_model_tags),
        ("output_node_names", spec.output_node_names),
        *((f"quantize_{d}", getattr(spec, f"quantize_{d}")) for d in QUANTIZATION_DTYPES),
    ):
        for value in values:
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
    if spec.input_format in ("tf_saved_model", "keras_saved_model", "tf_hub"):
        what = "saved_model.pb"
    elif spec.input_format == "tfjs_layers_model":
        what = "model.json"
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
    return markers[0] if what == "model.json" else root


def output_paths(spec: TfjsModelSpec, spec_path: str, target_name: str) -> Tuple[str, str]:
    """(output directory, path given to the converter), like the Bazel rule's layout."""
    out = validate(spec)
    out_dir = posixpath.join(spec_path, target_name) if spec_path else target_name
    if out in ("tfjs_layers_model", "tfjs_graph_model"):
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
    if spec.input_format in ("tf_saved_model", "tf_hub", "keras_saved_model"):
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


# Pinned process environment: the same variables the Bazel action sets.
PROCESS_ENV = {
    "CUDA_VISIBLE_DEVICES": "-1",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
    "SOURCE_DATE_EPOCH": "315532800",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_DETERMINISTIC_OPS": "1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TZ": "UTC",
}
