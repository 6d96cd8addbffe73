"""The Python API: one entry point per conversion, all going through ``convert``.

Every converter writes into a fresh staging location that ``fsutil.staged_output``
renames into place only when the conversion succeeded, so a failed or interrupted
conversion never leaves a half-written model behind and never clobbers an existing
output unless ``options.overwrite`` is set.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfjsconv import formats, fsutil
from tfjsconv.deep_stack import call_with_deep_stack
from tfjsconv.errors import ConversionError, UsageError
from tfjsconv.options import ConversionOptions, patterns

# Converters report their stages as INFO records on this logger (``tfjsconv.*``);
# the CLI shows them on a terminal and keeps build logs quiet.
log = logging.getLogger(__name__)

# (input_format, output_format) -> "module:function" (tfjsconv.formats.CONVERTERS).
# Modules are imported lazily so that conversions which do not need TensorFlow never
# import it.
_DISPATCH: Mapping[tuple[str, str], str] = formats.CONVERTERS

# Output formats whose output is a single file rather than a directory.
_FILE_OUTPUTS = {"keras", "keras_keras"}

Converter = Callable[[str, str, ConversionOptions], None]


def supported_pairs() -> tuple[tuple[str, str], ...]:
    """Every (input_format, output_format) pair ``convert`` accepts, sorted."""
    return formats.SUPPORTED_PAIRS


def _target_for(options: ConversionOptions) -> str:
    message, out = formats.output_format_problem(options.input_format, options.output_format)
    if message:
        raise UsageError(message)
    return _DISPATCH[(options.input_format, out)]


def _load(target: str) -> Converter:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def option_values(options: ConversionOptions) -> dict[str, Any]:
    """The build tools' options (``formats.OPTIONS``) as ``options`` sets them."""
    return {name: getattr(options, name) for name in formats.OPTIONS}


def validate_options(options: ConversionOptions) -> None:
    """Checks that do not need the input: formats, flag combinations and ranges.

    The one validation every tool shares (``tfjsconv.formats.problem``).
    """
    message = formats.problem(options.input_format, options.output_format, option_values(options))
    if message:
        raise UsageError(message)
    budget_values = {name: getattr(options, name) for name in ("quantize_budget", *formats.BUDGET_OPTIONS)}
    budget_values.update(option_values(options))
    message = formats.budget_problem(options.resolved_output_format or "", budget_values)
    if message:
        raise UsageError(message)


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
    log.info("converting %s (%s -> %s)", input_path, options.input_format, options.resolved_output_format)
    converter = _load(target)  # imported only now: it may pull in TensorFlow
    kind = "file" if options.resolved_output_format in _FILE_OUTPUTS else "dir"
    with fsutil.staged_output(output_path, kind=kind, overwrite=options.overwrite) as staging:
        # Keras walks deep models recursively (deep_stack): room for that walk.
        call_with_deep_stack(lambda: converter(input_path, staging, options))
        if options.quantize_budget is not None:
            _quantize_to_budget(staging, options)
    return output_path


def _quantize_to_budget(staging: str, options: ConversionOptions) -> None:
    """The ``quantize_budget`` search on the staged model; its report beside model.json
    or, staged the same way, in ``options.quantization_report_dir``."""
    from tfjsconv.quantize_search import apply

    if not options.quantization_report_dir:
        apply.quantize_to_budget(staging, options, staging)
        return
    with fsutil.staged_output(
        options.quantization_report_dir, kind="dir", overwrite=options.overwrite
    ) as reports:
        apply.quantize_to_budget(staging, options, reports)


# --- Convenience functions: one per conversion, mirroring the CLI -------------------
#
# Keyword options are ``ConversionOptions`` fields; quantize_* accept True, a pattern
# string ("dense*,conv/*") or a list of patterns, and metadata a {name: json} dict.


def options_from_kwargs(
    input_format: str,
    output_format: str | None,
    kwargs: Mapping[str, Any],
    *,
    fixed: Sequence[str] = (),
    caller: str = "tfjsconv",
) -> ConversionOptions:
    """Keyword arguments -> ``ConversionOptions``, normalized the way the CLI normalizes flags.

    quantize_* accept True, ``"pat1,pat2"`` or a list of patterns; metadata a dict;
    saved_model_tags / output_node_names a comma-separated string or a list. Unknown
    names, and the ``fixed`` ones the caller sets itself, are a ``UsageError`` instead
    of being silently ignored.
    """
    values = dict(kwargs)
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(ConversionOptions)})
    if unknown:
        raise UsageError(f"{caller} got unknown converter option(s): {', '.join(unknown)}")
    clash = sorted(set(values) & ({"input_format", "output_format"} | set(fixed)))
    if clash:
        raise UsageError(f"{caller} sets {', '.join(clash)} itself; do not pass it")
    for key in ("quantize_float16", "quantize_uint8", "quantize_uint16"):
        if key in values:
            values[key] = patterns(values[key])
    if isinstance(values.get("metadata"), Mapping):
        values["metadata"] = tuple(values["metadata"].items())
    for key in ("saved_model_tags", "output_node_names"):
        if isinstance(values.get(key), str):
            values[key] = tuple(s.strip() for s in values[key].split(",") if s.strip())
        elif key in values:
            values[key] = tuple(values[key])
    return ConversionOptions(input_format=input_format, output_format=output_format, **values)


def _options(input_format: str, output_format: str | None, **kwargs: Any) -> ConversionOptions:
    return options_from_kwargs(input_format, output_format, kwargs)


def convert_keras(
    model_path: str, output_dir: str, *, output_format: str = "tfjs_layers_model", **options: Any
) -> str:
    """Keras HDF5 (Keras 2 or 3) or ``.keras`` file -> tfjs layers (or graph) model."""
    fmt = "keras_keras" if str(model_path).endswith(".keras") else "keras"
    return convert(model_path, output_dir, _options(fmt, output_format, **options))


def convert_keras_saved_model(saved_model_dir: str, output_dir: str, **options: Any) -> str:
    """A SavedModel written by tf_keras (``model.save(dir)``) -> tfjs layers model."""
    return convert(saved_model_dir, output_dir, _options("keras_saved_model", "tfjs_layers_model", **options))


def convert_saved_model(saved_model_dir: str, output_dir: str, **options: Any) -> str:
    """TensorFlow SavedModel -> tfjs graph model (``signature_name``, ``saved_model_tags``...)."""
    return convert(saved_model_dir, output_dir, _options("tf_saved_model", "tfjs_graph_model", **options))


def convert_frozen_model(
    graph_pb: str, output_dir: str, *, output_node_names: Sequence[str], **options: Any
) -> str:
    """Frozen GraphDef (``.pb``) -> tfjs graph model."""
    return convert(
        graph_pb,
        output_dir,
        _options("tf_frozen_model", "tfjs_graph_model", output_node_names=output_node_names, **options),
    )


def convert_tf_hub(module: str, output_dir: str, **options: Any) -> str:
    """TF Hub module (local directory or cached handle) -> tfjs graph model."""
    return convert(module, output_dir, _options("tf_hub", "tfjs_graph_model", **options))


def convert_tfjs_layers_model(
    model_json: str, output_path: str, *, output_format: str = "tfjs_layers_model", **options: Any
) -> str:
    """tfjs layers model -> re-sharded/quantized layers model, graph model, or Keras."""
    return convert(model_json, output_path, _options("tfjs_layers_model", output_format, **options))


def save_keras_model(model: Any, output_dir: str, **options: Any) -> str:
    """An in-memory Keras model (tf_keras or Keras 3) -> tfjs layers model.

    The model is saved into a private temporary directory first (``.h5`` for tf_keras,
    ``.keras`` for Keras 3), then converted like a file would be.
    """
    with tempfile.TemporaryDirectory(prefix="tfjsconv-keras-") as tmp:
        is_tf_keras = type(model).__module__.startswith("tf_keras")
        path = os.path.join(tmp, "model.h5" if is_tf_keras else "model.keras")
        model.save(path)
        return convert_keras(path, output_dir, **options)


def load_keras_model(model_json: str) -> Any:
    """tfjs layers model -> an in-memory tf_keras model (weights dequantized)."""
    with tempfile.TemporaryDirectory(prefix="tfjsconv-load-") as tmp:
        path = convert_tfjs_layers_model(model_json, os.path.join(tmp, "model.h5"), output_format="keras")
        import tf_keras  # heavy; only here

        return tf_keras.models.load_model(path, compile=False)


def web_package(
    model_dir: str, output_dir: str, package_name: str, version: str, *, overwrite: bool = False
) -> str:
    """A converted tfjs model -> an npm package directory for web apps (``tfjs_web_package``:
    hashed shards, .gz/.br, integrity.json, loader, typings, report); returns its path."""
    from tfjsconv.webpackage import build_web_package

    return build_web_package(model_dir, output_dir, package_name, version, overwrite=overwrite).path
