"""The Python API: one entry point per conversion, all going through ``convert``.

Every converter writes into a fresh staging location that ``fsutil.staged_output``
renames into place only when the conversion succeeded, so a failed or interrupted
conversion never leaves a half-written model behind and never clobbers an existing
output unless ``options.overwrite`` is set.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable, Dict, Tuple

from tfjsconv import fsutil
from tfjsconv.errors import ConversionError, UsageError
from tfjsconv.options import INPUT_FORMATS, OUTPUT_FORMATS, ConversionOptions

# (input_format, output_format) -> "module:function". Modules are imported lazily so
# that conversions which do not need TensorFlow never import it.
_DISPATCH: Dict[Tuple[str, str], str] = {
    ("keras", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_to_layers",
    ("keras_keras", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_to_layers",
    ("keras_saved_model", "tfjs_layers_model"): "tfjsconv.layers.convert:keras_saved_model_to_layers",
    ("tfjs_layers_model", "tfjs_layers_model"): "tfjsconv.layers.convert:layers_to_layers",
    ("tfjs_layers_model", "keras"): "tfjsconv.layers.convert:layers_to_keras_h5",
    ("tfjs_layers_model", "keras_keras"): "tfjsconv.layers.convert:layers_to_keras_keras",
    ("tfjs_layers_model", "keras_saved_model"): "tfjsconv.layers.convert:layers_to_keras_saved_model",
    ("keras", "tfjs_graph_model"): "tfjsconv.graph.convert:keras_to_graph",
    ("keras_keras", "tfjs_graph_model"): "tfjsconv.graph.convert:keras_to_graph",
    ("tfjs_layers_model", "tfjs_graph_model"): "tfjsconv.graph.convert:layers_to_graph",
    ("tf_saved_model", "tfjs_graph_model"): "tfjsconv.graph.convert:saved_model_to_graph",
    ("tf_hub", "tfjs_graph_model"): "tfjsconv.graph.convert:hub_to_graph",
    ("tf_frozen_model", "tfjs_graph_model"): "tfjsconv.graph.convert:frozen_to_graph",
}

# Output formats whose output is a single file rather than a directory.
_FILE_OUTPUTS = {"keras", "keras_keras"}

Converter = Callable[[str, str, ConversionOptions], None]


def supported_pairs() -> Tuple[Tuple[str, str], ...]:
    """Every (input_format, output_format) pair ``convert`` accepts, sorted."""
    return tuple(sorted(_DISPATCH))


def _target_for(options: ConversionOptions) -> str:
    if options.input_format not in INPUT_FORMATS:
        raise UsageError(
            f"unknown --input_format {options.input_format!r}; "
            f"choose one of: {', '.join(INPUT_FORMATS)}"
        )
    out = options.resolved_output_format
    if out is not None and out not in OUTPUT_FORMATS:
        raise UsageError(
            f"unknown --output_format {out!r}; choose one of: {', '.join(OUTPUT_FORMATS)}"
        )
    target = _DISPATCH.get((options.input_format, out or ""))
    if target is None:
        raise UsageError(
            f"unsupported input_format - output_format pair: {options.input_format} - {out}"
        )
    return target


def _load(target: str) -> Converter:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def validate_options(options: ConversionOptions) -> None:
    """Checks that do not need the input: flag combinations and ranges."""
    out = options.resolved_output_format
    if options.weight_shard_size_bytes <= 0:
        raise UsageError(
            "--weight_shard_size_bytes must be a positive integer, "
            f"got {options.weight_shard_size_bytes}"
        )
    if (
        options.weight_shard_size_bytes != ConversionOptions.weight_shard_size_bytes
        and out not in ("tfjs_layers_model", "tfjs_graph_model")
    ):
        raise UsageError(
            "--weight_shard_size_bytes applies only when the output format is "
            "tfjs_layers_model or tfjs_graph_model"
        )
    if options.input_format == "tf_frozen_model" and not options.output_node_names:
        raise UsageError('--output_node_names is required for input format "tf_frozen_model"')
    if options.signature_name and options.input_format not in ("tf_saved_model", "tf_hub"):
        raise UsageError(
            '--signature_name applies only to the "tf_saved_model" and "tf_hub" input '
            f'formats, not "{options.input_format}"'
        )
    if options.control_flow_v2 and out != "tfjs_graph_model":
        raise UsageError(
            '--control_flow_v2 applies only to the "tfjs_graph_model" output format, '
            f'not "{out}"'
        )
    if options.quantization_specs and out in ("keras_saved_model",):
        raise UsageError(f"quantization does not apply to the {out} output format")
    if options.split_weights_by_layer and out != "tfjs_layers_model":
        raise UsageError("--split_weights_by_layer applies only to tfjs_layers_model output")


def convert(input_path: str, output_path: str, options: ConversionOptions) -> str:
    """Convert ``input_path`` to ``output_path``; return the final output path.

    Raises ``ConversionError`` (or a subclass) for every user error.
    """
    if not input_path:
        raise UsageError("missing input_path argument (see --help)")
    if not output_path:
        raise UsageError("missing output_path argument (see --help)")
    target = _target_for(options)
    validate_options(options)
    is_tf_hub_handle = options.input_format == "tf_hub" and "://" in input_path
    if not is_tf_hub_handle and not os.path.exists(input_path):
        raise ConversionError(f"input path does not exist: {input_path}")
    fsutil.check_not_overlapping(input_path, output_path)
    converter = _load(target)  # imported only now: it may pull in TensorFlow
    kind = "file" if options.resolved_output_format in _FILE_OUTPUTS else "dir"
    with fsutil.staged_output(output_path, kind=kind, overwrite=options.overwrite) as staging:
        converter(input_path, staging, options)
    return output_path
