"""The questions, put through ``questionary`` (only those that apply to the input);
validators are plain functions so they are testable without a terminal."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import IO, Any

from tfjsconv.options import DEFAULT_OUTPUT_FORMAT, DEFAULT_SHARD_SIZE_BYTES, INPUT_FORMATS
from tfjsconv.wizard.detect import FORMAT_TITLES, URL, WizardError, detect, outputs_for_input
from tfjsconv.wizard.render import Answers


def _validate_positive_int(text: str) -> Any:
    text = text.strip()
    if text.isdigit() and int(text) > 0:
        return True
    return "enter a positive number of bytes"


def parse_metadata_answer(text: str) -> tuple[tuple[str, str], ...]:
    """'name:path.json, other:x.json' -> (('name', 'path.json'), ...)."""
    entries = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, path = item.partition(":")
        if not sep or not name.strip() or not path.strip():
            raise WizardError(f"metadata entries look like name:path.json, got {item!r}")
        entries.append((name.strip(), path.strip()))
    return tuple(entries)


def _validate_metadata(text: str) -> Any:
    try:
        for _, path in parse_metadata_answer(text):
            if not os.path.isfile(path):
                return f"metadata file not found: {path}"
    except WizardError as exc:
        return str(exc)
    return True


def _validate_input(text: str) -> Any:
    text = text.strip()
    if not text:
        return "enter a path or a TF Hub URL"
    if URL.match(text) or os.path.exists(text):
        return True
    return f"no such file or directory: {text}"


def _is_nonempty(path: str) -> bool:
    if os.path.isdir(path):
        return bool(os.listdir(path))
    return os.path.exists(path)


class Prompts:
    """Thin wrapper over questionary; Ctrl-C / Ctrl-D raise KeyboardInterrupt."""

    def __init__(self, questionary_module, output: IO[str] | None = None):
        self.q = questionary_module
        self.kwargs = {"output": output} if output is not None else {}

    def text(self, message: str, default: str = "", validate=None) -> str:
        return self.q.text(message, default=default, validate=validate, **self.kwargs).unsafe_ask()

    def select(self, message: str, choices: Sequence[tuple[str, Any]], default: Any = None) -> Any:
        items = [self.q.Choice(title=title, value=value) for title, value in choices]
        return self.q.select(message, choices=items, default=default, **self.kwargs).unsafe_ask()

    def confirm(self, message: str, default: bool) -> bool:
        return self.q.confirm(message, default=default, **self.kwargs).unsafe_ask()

    def checkbox(self, message: str, choices: Sequence[tuple[str, Any]]) -> list[Any]:
        items = [self.q.Choice(title=title, value=value) for title, value in choices]
        return self.q.checkbox(message, choices=items, **self.kwargs).unsafe_ask()


def ask(prompts: Prompts, say: Callable[[str], None]) -> Answers:
    """Ask only the questions that apply to the detected input; return the answers."""
    input_path = prompts.text("Path or URL of the model to convert:", validate=_validate_input).strip()
    det = detect(input_path)
    input_path = det.path
    say(f"Detected: {det.note}" + (f" -> {det.input_format}" if det.input_format else ""))
    formats = list(INPUT_FORMATS)
    if det.input_format:
        formats.remove(det.input_format)
        formats.insert(0, det.input_format)
    input_format = prompts.select(
        "Input format:",
        [(FORMAT_TITLES[f] + ("  (detected)" if f == det.input_format else ""), f) for f in formats],
        default=formats[0],
    )

    outputs = outputs_for_input(input_format)
    default_out = DEFAULT_OUTPUT_FORMAT[input_format]
    output_format = default_out
    if len(outputs) > 1:
        ordered = [default_out] + [f for f in outputs if f != default_out]
        output_format = prompts.select(
            "Output format:", [(FORMAT_TITLES[f] + f"  [{f}]", f) for f in ordered], default=default_out
        )

    tags: tuple[str, ...] = ()
    signature: str | None = None
    if input_format == "tf_saved_model" and det.meta_graphs:
        metas = det.meta_graphs
        meta = metas[0]
        if len(metas) > 1:
            meta = prompts.select(
                "MetaGraph tags:", [(",".join(m.tags) or "(no tags)", m) for m in metas], default=metas[0]
            )
        tags = meta.tags
        sigs = meta.signatures
        if sigs:
            names = [s.name for s in sigs]
            default_sig = "serving_default" if "serving_default" in names else names[0]
            signature = prompts.select(
                "Signature:",
                [(f"{s.name}  ({'; '.join(s.inputs)} -> {'; '.join(s.outputs)})", s.name) for s in sigs],
                default=default_sig,
            )
            if signature == "serving_default":
                signature = None  # the converter's default; keeps the command short
    elif input_format == "tf_hub":
        signature = prompts.text("Signature name (empty for 'default'):").strip() or None

    output_nodes: tuple[str, ...] = ()
    if input_format == "tf_frozen_model":
        candidates = det.output_node_candidates
        if candidates:
            picked = prompts.checkbox("Output nodes:", [(n, n) for n in candidates])
            output_nodes = tuple(picked)
        if not output_nodes:
            text = prompts.text(
                "Output node names (comma-separated):",
                validate=lambda t: bool(t.strip()) or "at least one node is required",
            )
            output_nodes = tuple(n.strip() for n in text.split(",") if n.strip())

    tfjs_out = output_format in ("tfjs_layers_model", "tfjs_graph_model")
    quant_dtype: str | None = None
    quant_patterns: tuple[str, ...] = ()
    shard = DEFAULT_SHARD_SIZE_BYTES
    split = False
    if tfjs_out:
        # questionary replaces a None value by the title, hence the "none" sentinel.
        quant_dtype = prompts.select(
            "Quantize weights?",
            [
                ("No compression (float32)", "none"),
                ("float16 (half size, ~1e-3 relative error)", "float16"),
                ("uint8 (quarter size, affine per-tensor)", "uint8"),
                ("uint16 (half size, affine per-tensor)", "uint16"),
            ],
            default="none",
        )
        quant_dtype = None if quant_dtype == "none" else quant_dtype
        if quant_dtype:
            text = prompts.text("Weight name patterns to quantize (comma-separated, * = all):", default="*")
            quant_patterns = tuple(p.strip() for p in text.split(",") if p.strip()) or ("*",)
        shard = int(
            prompts.text(
                "Weight shard size in bytes:",
                default=str(DEFAULT_SHARD_SIZE_BYTES),
                validate=_validate_positive_int,
            ).strip()
        )
        if output_format == "tfjs_layers_model" and input_format != "tfjs_layers_model":
            split = prompts.confirm("Split weights into one group per layer?", default=False)

    skip_op_check, strip_debug, cf_v2 = False, True, False
    if output_format == "tfjs_graph_model":
        picked = prompts.checkbox(
            "Graph options (space to toggle, enter to accept):",
            [
                ("Skip the op check (keep ops tfjs cannot run)", "skip_op_check"),
                ("Keep debug ops (Assert, Print, CheckNumerics)", "keep_debug_ops"),
                ("Control flow v2 (While/If instead of Switch/Merge)", "control_flow_v2"),
            ],
        )
        skip_op_check = "skip_op_check" in picked
        strip_debug = "keep_debug_ops" not in picked
        cf_v2 = "control_flow_v2" in picked

    metadata: tuple[tuple[str, str], ...] = ()
    if tfjs_out:
        metadata = parse_metadata_answer(
            prompts.text(
                "User metadata files (name:path.json, comma-separated; empty for none):",
                validate=_validate_metadata,
            )
        )

    file_out = output_format in ("keras", "keras_keras")
    what = "file" if file_out else "directory"
    overwrite = False
    while True:
        output_path = prompts.text(
            f"Output {what}:", validate=lambda t: bool(t.strip()) or "required"
        ).strip()
        if file_out and os.path.isdir(output_path):
            output_path = os.path.join(
                output_path, "model.keras" if output_format == "keras_keras" else "model.h5"
            )
        if not _is_nonempty(output_path):
            break
        if prompts.confirm(f"{output_path} exists and is not empty. Overwrite it?", default=False):
            overwrite = True
            break

    return Answers(
        input_path=input_path,
        input_format=input_format,
        output_path=output_path,
        output_format=output_format,
        saved_model_tags=tags,
        signature_name=signature,
        output_node_names=output_nodes,
        quantize_dtype=quant_dtype,
        quantize_patterns=quant_patterns,
        weight_shard_size_bytes=shard,
        split_weights_by_layer=split,
        skip_op_check=skip_op_check,
        strip_debug_ops=strip_debug,
        control_flow_v2=cf_v2,
        metadata=metadata,
        overwrite=overwrite,
    )
