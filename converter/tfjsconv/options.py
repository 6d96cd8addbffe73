"""The conversion options shared by the CLI, the Python API and the Bazel tool.

One frozen dataclass instead of a dozen keyword arguments threaded through every
converter: each converter reads only the fields that apply to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

# The formats and defaults live in tfjsconv.formats (shared with the build tools).
from tfjsconv.formats import (
    DEFAULT_OUTPUT_FORMAT,
    DEFAULT_SHARD_SIZE_BYTES,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
)

__all__ = [
    "DEFAULT_OUTPUT_FORMAT",
    "DEFAULT_SHARD_SIZE_BYTES",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "ConversionOptions",
    "QuantizeSpec",
    "patterns",
]

# A quantization selector: True means "every weight no pattern claims" (the
# fallthrough); a tuple of fnmatch patterns selects by weight name.
QuantizeSpec = None | bool | tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """Everything a conversion may need besides the input and output paths."""

    input_format: str = "tf_saved_model"
    output_format: str | None = None
    weight_shard_size_bytes: int = DEFAULT_SHARD_SIZE_BYTES
    quantize_float16: QuantizeSpec = None
    quantize_uint8: QuantizeSpec = None
    quantize_uint16: QuantizeSpec = None
    split_weights_by_layer: bool = False
    # name -> already-parsed JSON value, in the order the user gave them.
    metadata: tuple[tuple[str, Any], ...] = ()
    signature_name: str | None = None
    saved_model_tags: tuple[str, ...] = ("serve",)
    output_node_names: tuple[str, ...] = ()
    strip_debug_ops: bool = True
    control_flow_v2: bool = False
    use_structured_outputs_names: bool = False
    skip_op_check: bool = False
    experiments: bool = False
    # Choose every weight's dtype so the outputs stay within this error of float32's
    # (tfjsconv.quantize_search); the calibration inputs (.npz/.json; None = generated),
    # the metric (formats.ERROR_METRICS; None = the default) and where the report goes
    # (None = beside model.json).
    quantize_budget: float | None = None
    calibration_inputs: str | None = None
    error_metric: str | None = None
    quantization_report_dir: str | None = None
    # Replace an existing, non-empty output instead of refusing.
    overwrite: bool = False
    # Allow Keras Lambda layers / custom objects to be deserialized (runs code).
    allow_unsafe_deserialization: bool = False
    # Accept shard and asset files that are symlinks resolving outside the model
    # directory: Bazel's sandboxes stage every declared input as such a symlink.
    follow_symlinks: bool = False

    @property
    def resolved_output_format(self) -> str | None:
        return self.output_format or DEFAULT_OUTPUT_FORMAT.get(self.input_format)

    @property
    def quantization_specs(self) -> Mapping[str, QuantizeSpec]:
        """{'float16'|'uint8'|'uint16': spec} for the dtypes the user asked for."""
        specs = {
            "float16": self.quantize_float16,
            "uint8": self.quantize_uint8,
            "uint16": self.quantize_uint16,
        }
        return {k: v for k, v in specs.items() if v is not None and v is not False}

    @property
    def metadata_dict(self) -> dict:
        return dict(self.metadata)

    def replace(self, **changes: Any) -> ConversionOptions:
        return dataclasses.replace(self, **changes)


def patterns(value: str | Sequence[str] | bool | None) -> QuantizeSpec:
    """Normalize a user value ('a,b', ['a','b'], True) to a QuantizeSpec."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    else:
        items = [str(p).strip() for p in value]
    items = [p for p in items if p]
    return tuple(items) if items else True
