"""``tensorflowjs_converter``: the reference converter's command line, minus its bugs.

Thin by design: parse flags, build ``ConversionOptions``, call ``api.convert`` and
map errors to one-line messages. Differences from the reference, all deliberate:

* arguments are taken as the shell split them (paths with spaces work);
* ``--metadata name:C:\\path`` splits on the first ``:`` only;
* boolean flags parse their value (``--strip_debug_ops=False`` means False);
* a value-less ``--quantize_*`` no longer swallows the input path;
* outputs are written atomically and never replace a non-empty output unless
  ``--overwrite`` is given.

``main`` never calls ``sys.exit`` so the Bazel worker can call it repeatedly.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from typing import IO, Any

import tfjsconv
from tfjsconv import api, progress, tf_env
from tfjsconv.errors import ConversionError, UsageError, report_internal_error
from tfjsconv.formats import ERROR_METRICS
from tfjsconv.options import (
    DEFAULT_SHARD_SIZE_BYTES,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    ConversionOptions,
    patterns,
)

PROG = "tensorflowjs_converter"
_QUANTIZE_FLAGS = ("--quantize_float16", "--quantize_uint8", "--quantize_uint16")
_BOOL_FLAGS = ("--strip_debug_ops", "--use_structured_outputs_names", "--control_flow_v2", "--experiments")
_BOOL_WORDS = ("true", "false", "1", "0", "yes", "no", "y", "n", "on", "off")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors stay one line."""

    stdout: IO[str] | None = None

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self.stdout or sys.stdout).write(message)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_bool(value: str) -> bool:
    """Parse a boolean flag value; the reference's ``type=bool`` made 'False' true."""
    text = value.strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _positive_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None


def _budget(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None


def build_parser(stdout: IO[str] | None = None) -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Convert TensorFlow / Keras models to TensorFlow.js (tfjsconv).",
    )
    p.stdout = stdout
    p.add_argument("input_path", nargs="?", help="input model file, directory or TF Hub handle")
    p.add_argument("output_path", nargs="?", help="output directory (or .h5 file for keras output)")
    p.add_argument("--input_format", default="tf_saved_model", choices=INPUT_FORMATS)
    p.add_argument(
        "--output_format",
        choices=OUTPUT_FORMATS,
        help="defaults: keras*/ -> tfjs_layers_model, tf_* -> tfjs_graph_model, tfjs_layers_model -> keras",
    )
    p.add_argument("--signature_name", help="SavedModel signature (default serving_default; tf_hub: default)")
    p.add_argument("--saved_model_tags", default="serve", help="comma-separated MetaGraph tags")
    for flag, dtype in zip(_QUANTIZE_FLAGS, ("float16", "uint8", "uint16"), strict=False):
        p.add_argument(
            flag,
            nargs="?",
            const=True,
            default=None,
            metavar="PATTERNS",
            help=f"quantize weights to {dtype}; optional comma-separated fnmatch patterns "
            "of weight names (no value: every weight no other pattern claims)",
        )
    p.add_argument(
        "--quantize_budget",
        type=_budget,
        metavar="MAX_ERROR",
        help="choose each weight's dtype (float32/float16/uint16/uint8) for the fewest bytes "
        "whose outputs stay within MAX_ERROR of float32's (measured in TensorFlow); writes "
        "quantization_report.{json,md,svg}",
    )
    p.add_argument(
        "--calibration_inputs",
        metavar="FILE",
        help="inputs for --quantize_budget: .npz or .json {input name: array}; default: "
        "generated from the signature",
    )
    p.add_argument(
        "--error_metric", choices=ERROR_METRICS, help="--quantize_budget's metric (default max_abs)"
    )
    p.add_argument(
        "--quantization_report_dir",
        metavar="DIR",
        help="write --quantize_budget's report here instead of beside model.json",
    )
    p.add_argument(
        "--quantization_bytes",
        type=int,
        choices=(1, 2),
        help="deprecated: use --quantize_uint8 / --quantize_uint16",
    )
    p.add_argument("--split_weights_by_layer", action="store_true")
    p.add_argument("-v", "--version", action="store_true", help="print versions and exit")
    p.add_argument("--skip_op_check", action="store_true")
    p.add_argument("--strip_debug_ops", type=parse_bool, nargs="?", const=True, default=True)
    p.add_argument("--use_structured_outputs_names", type=parse_bool, nargs="?", const=True, default=False)
    p.add_argument("--weight_shard_size_bytes", type=_positive_int, default=None)
    p.add_argument("--output_node_names", help="comma-separated output nodes (tf_frozen_model)")
    p.add_argument("--control_flow_v2", type=parse_bool, nargs="?", const=True, default=False)
    p.add_argument("--experiments", type=parse_bool, nargs="?", const=True, default=False)
    p.add_argument("--metadata", help="name:path.json[,name2:path2.json] added as userDefinedMetadata")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output")
    p.add_argument(
        "--allow_unsafe_deserialization",
        action="store_true",
        help="trusted models only: allow Keras Lambda layers and custom objects, and load "
        "SavedModels/frozen graphs without the op allowlist scan (runs code from the model)",
    )
    p.add_argument(
        "--follow_symlinks",
        action="store_true",
        help="accept model files that are symlinks out of the model directory (build "
        "sandboxes stage inputs that way); '..' and absolute paths are still refused",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def _bare_quantize_flag_positions(argv: Sequence[str]) -> list[int]:
    """Positions of value-less-form quantize flags that are followed by a plain token."""
    return [
        i
        for i, tok in enumerate(argv)
        if tok in _QUANTIZE_FLAGS and i + 1 < len(argv) and not argv[i + 1].startswith("-")
    ]


def expand_flagfiles(argv: Sequence[str]) -> list[str]:
    """Replace ``@file`` tokens by the file's lines (one argument per line), like Bazel."""
    out: list[str] = []
    for tok in argv:
        if tok.startswith("@") and len(tok) > 1:
            try:
                with open(tok[1:], encoding="utf-8") as f:
                    out.extend(expand_flagfiles([line.rstrip("\n") for line in f if line.strip()]))
            except OSError as exc:
                raise UsageError(f"cannot read flag file {tok[1:]}: {exc.strerror}") from None
        else:
            out.append(tok)
    return out


def _normalize_bool_flags(argv: Sequence[str]) -> list[str]:
    """A bare boolean flag takes the next token only if it is a boolean word.

    ``--control_flow_v2 True`` (the reference's e2e scripts) keeps working, while
    ``--control_flow_v2 model_dir out`` no longer eats ``model_dir``.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in _BOOL_FLAGS:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is not None and nxt.strip().lower() in _BOOL_WORDS:
                out.append(f"{tok}={nxt}")
                i += 2
                continue
            out.append(f"{tok}=true")
        else:
            out.append(tok)
        i += 1
    return out


def parse_args(argv: Sequence[str], stdout: IO[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; a bare ``--quantize_*`` never eats a positional path.

    argparse gives ``nargs='?'`` flags the next token. When that leaves a positional
    missing, the token was a path: move the flag to the end (last flag first) and parse
    again.
    """
    parser = build_parser(stdout)
    argv = _normalize_bool_flags(expand_flagfiles(argv))
    args = parser.parse_args(argv)
    while not args.version and (args.input_path is None or args.output_path is None):
        positions = _bare_quantize_flag_positions(argv)
        if not positions:
            break
        i = positions[-1]
        argv = argv[:i] + argv[i + 1 :] + [argv[i]]
        args = parser.parse_args(argv)
    return args


def parse_metadata(spec: str | None) -> tuple[tuple[str, object], ...]:
    """``name:path,name2:path2`` -> ((name, json), ...); splits on the first ':' only."""
    if not spec:
        return ()
    entries = []
    seen = set()
    for item in spec.split(","):
        name, sep, path = item.partition(":")
        name = name.strip()
        if not sep or not name or not path:
            raise UsageError(f"--metadata entries must look like name:path.json, got {item!r}")
        if name in seen:
            raise UsageError(f"--metadata name {name!r} given twice")
        seen.add(name)
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
        except FileNotFoundError:
            raise ConversionError(f"metadata file not found: {path}") from None
        except IsADirectoryError:
            raise ConversionError(f"metadata path is a directory: {path}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConversionError(f"metadata file {path} is not valid JSON: {exc}") from None
        entries.append((name, value))
    return tuple(entries)


def options_from_args(args: argparse.Namespace) -> ConversionOptions:
    """Turn parsed flags into ``ConversionOptions`` (including the deprecated ones)."""
    quant = {
        "quantize_float16": patterns(args.quantize_float16),
        "quantize_uint8": patterns(args.quantize_uint8),
        "quantize_uint16": patterns(args.quantize_uint16),
    }
    if args.quantization_bytes is not None:
        if any(v is not None for v in quant.values()):
            raise UsageError("--quantization_bytes cannot be used with the --quantize_* flags")
        print(
            f"{PROG}: warning: --quantization_bytes is deprecated; use "
            f"--quantize_{'uint8' if args.quantization_bytes == 1 else 'uint16'}",
            file=sys.stderr,
        )
        quant["quantize_uint8" if args.quantization_bytes == 1 else "quantize_uint16"] = True
    fallthroughs = [k for k, v in quant.items() if v is True]
    if len(fallthroughs) > 1:
        raise UsageError(
            "more than one quantization flag without patterns ("
            + ", ".join("--" + k for k in fallthroughs)
            + "); at most one may apply to all remaining weights"
        )
    tags = tuple(t.strip() for t in (args.saved_model_tags or "").split(",") if t.strip())
    nodes = tuple(n.strip() for n in (args.output_node_names or "").split(",") if n.strip())
    return ConversionOptions(
        input_format=args.input_format,
        output_format=args.output_format,
        weight_shard_size_bytes=(
            DEFAULT_SHARD_SIZE_BYTES if args.weight_shard_size_bytes is None else args.weight_shard_size_bytes
        ),
        split_weights_by_layer=args.split_weights_by_layer,
        metadata=parse_metadata(args.metadata),
        signature_name=args.signature_name,
        saved_model_tags=tags,
        output_node_names=nodes,
        strip_debug_ops=args.strip_debug_ops,
        control_flow_v2=args.control_flow_v2,
        use_structured_outputs_names=args.use_structured_outputs_names,
        skip_op_check=args.skip_op_check,
        experiments=args.experiments,
        overwrite=args.overwrite,
        allow_unsafe_deserialization=args.allow_unsafe_deserialization,
        follow_symlinks=args.follow_symlinks,
        quantize_budget=args.quantize_budget,
        calibration_inputs=args.calibration_inputs,
        error_metric=args.error_metric,
        quantization_report_dir=args.quantization_report_dir,
        **quant,
    )


def _dist_version(*names: str) -> str:
    for name in names:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return "not installed"


def version_text() -> str:
    """Versions without importing TensorFlow (which costs seconds)."""
    return (
        f"\ntensorflowjs {tfjsconv.COMPATIBLE_TFJS_VERSION} (tfjsconv {tfjsconv.__version__})\n\n"
        "Dependency versions:\n"
        f"  keras {_dist_version('tf-keras', 'tf_keras')}\n"
        f"  tensorflow {_dist_version('tensorflow-cpu', 'tensorflow')}\n"
    )


class _StepHandler(logging.Handler):
    """Routes the converters' INFO records to the progress reporter, warnings to stderr."""

    def __init__(self, reporter: progress.Reporter, stderr: IO[str]):
        super().__init__(logging.INFO)
        self._reporter = reporter
        self._stderr = stderr

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        if record.levelno >= logging.WARNING:
            print(f"{PROG}: warning: {message}", file=self._stderr)
        else:
            self._reporter.step(message)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the converter CLI; return the exit code (never raises for user errors)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    tf_env.configure()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv, stdout)
        if args.version:
            print(version_text(), file=stdout)
            return 0
        options = options_from_args(args)
        reporter = progress.for_stream(stdout, quiet=True if args.quiet else None)
        logger = logging.getLogger("tfjsconv")
        handler = _StepHandler(reporter, stderr)
        saved = (logger.level, logger.propagate)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            output = api.convert(args.input_path, args.output_path, options)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
        reporter.summary(output)
        return 0
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except ConversionError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output was written", file=stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=stderr)
        return 1
    except Exception:  # a bug in tfjsconv: keep the traceback
        return report_internal_error(PROG, stderr)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def console_main() -> None:
    """Console-script entry point: SIGTERM cleans up like Ctrl-C does."""
    signal.signal(signal.SIGTERM, _terminate)
    tf_env.exit_process(main())


if __name__ == "__main__":
    console_main()
