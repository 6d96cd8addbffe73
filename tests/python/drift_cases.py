"""Every (input, output) pair x every option, as each tool spells it.

The cases the drift tests ask the CLI, the Pants plugin, the setuptools hook and the
Bazel rule about: every input format x every output format (and "left empty"), each
with no option or with one option at a non-default value. ``expected`` is the
converter's verdict (``tfjsconv.formats.problem``); the tests require every tool to
give that same verdict with that same message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfjsconv import formats

# One non-default value per option (the shard size twice: "positive" and "applies").
# metadata is left out: no rule constrains it, and each tool reads its files itself.
OPTION_VALUES: tuple[tuple[str, Any], ...] = (
    ("weight_shard_size_bytes", 1024),
    ("weight_shard_size_bytes", 0),
    ("quantize_float16", ["*"]),
    ("quantize_uint8", ["*"]),
    ("quantize_uint16", ["*"]),
    ("signature_name", "sig"),
    ("saved_model_tags", ["serve", "gpu"]),
    ("output_node_names", ["y"]),
    ("strip_debug_ops", False),
    ("control_flow_v2", True),
    ("use_structured_outputs_names", True),
    ("split_weights_by_layer", True),
    ("skip_op_check", True),
)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str  # a valid Bazel target name
    input_format: str
    output_format: str | None
    option: str | None
    value: Any

    @property
    def values(self) -> dict[str, Any]:
        return {} if self.option is None else {self.option: self.value}

    @property
    def expected(self) -> str | None:
        return formats.problem(self.input_format, self.output_format, self.values)

    def cli_flags(self) -> list[str]:
        flags = [f"--input_format={self.input_format}"]
        if self.output_format:
            flags.append(f"--output_format={self.output_format}")
        if self.option is not None:
            value = self.value
            if value is True:  # every boolean flag takes the bare form
                flags.append(f"--{self.option}")
                return flags
            if value is False:
                value = "false"
            elif isinstance(value, list):
                value = ",".join(value)
            flags.append(f"--{self.option}={value}")
        return flags

    def starlark_attrs(self) -> str:
        attrs = [f'input_format = "{self.input_format}"']
        if self.output_format:
            attrs.append(f'output_format = "{self.output_format}"')
        if self.option is not None:
            value = self.value
            text = repr(value).replace("'", '"') if not isinstance(value, bool) else str(value)
            attrs.append(f"{self.option} = {text}")
        return ", ".join(attrs)


def cases() -> list[Case]:
    out: list[Case] = []
    for inp in formats.INPUT_FORMATS:
        for outp in (None, *formats.OUTPUT_FORMATS):
            variants: list[tuple[str | None, Any]] = [(None, None), *OPTION_VALUES]
            for i, (option, value) in enumerate(variants):
                name = f"{inp}__{outp or 'default'}__{i}"
                out.append(Case(name, inp, outp, option, value))
    return out
