"""``tfjs_pb2json``: the command line of the legacy-model migration.

``main`` returns an exit code and never calls ``sys.exit`` so build tools (the
Bazel action, tests) can call it in-process. User errors print one line to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from tfjsconv import tf_env
from tfjsconv.errors import ConversionError, UsageError, report_internal_error
from tfjsconv_pb2json import legacy
from tfjsconv_pb2json.migrate import MigrationPlan, check_dest, plan_migration, write_migration

PROG = "tfjs_pb2json"


class _Exit(Exception):
    def __init__(self, code: int):
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors by raising instead of exiting the process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Migrate legacy TensorFlow.js 0.x graph models (tensorflowjs_model.pb + "
            "weights_manifest.json) to the current model.json format."
        ),
        fromfile_prefix_chars="@",
    )
    parser.add_argument("src", help="legacy model directory (SRC_ROOT with --batch)")
    parser.add_argument("dest", help="output directory (DEST_ROOT with --batch)")
    parser.add_argument(
        "--batch",
        action="store_true",
        help="migrate every legacy model directory under SRC into the mirrored path under DEST",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--dry_run",
        "--dry-run",
        action="store_true",
        help="print what would change and write nothing",
    )
    parser.add_argument(
        "--no_extra_files",
        "--no-extra-files",
        action="store_true",
        help="do not copy files other than the model's own (the Bazel rule sets this)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def _plans(args: argparse.Namespace) -> list[tuple[MigrationPlan, str]]:
    """Validate every model first so a bad one stops the run before any write."""
    if not args.batch:
        return [(plan_migration(args.src), args.dest)]
    if not os.path.isdir(args.src):
        raise ConversionError(f"SRC_ROOT is not a directory: {args.src}")
    rels = legacy.find_legacy_dirs(args.src)
    dest_real = os.path.realpath(args.dest)
    src_real = os.path.realpath(args.src)
    if dest_real == src_real or dest_real.startswith(src_real + os.sep):
        raise ConversionError(f"DEST_ROOT must not lie inside SRC_ROOT: {args.dest}")
    if not rels:
        raise ConversionError(f"no legacy model directories ({legacy.PB_NAME}) found under {args.src}")
    return [
        (plan_migration(os.path.join(args.src, rel)), os.path.normpath(os.path.join(args.dest, rel)))
        for rel in rels
    ]


def run(argv: Sequence[str], out: TextIO) -> None:
    """Parse ``argv`` and migrate; raise ConversionError on user errors."""
    args = build_parser().parse_args(list(argv))
    plans = _plans(args)
    for plan, dest in plans:
        check_dest(plan.src, dest, overwrite=args.overwrite)
    for plan, dest in plans:
        if args.dry_run:
            out.write("\n".join(plan.describe(dest, include_extras=not args.no_extra_files)) + "\n")
            continue
        write_migration(plan, dest, overwrite=args.overwrite, include_extras=not args.no_extra_files)
        if not args.quiet:
            out.write(f"migrated {plan.src} -> {dest}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    # Importing TensorFlow's protobuf classes loads TF; keep its C++ log noise out.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        run(sys.argv[1:] if argv is None else argv, sys.stdout)
    except _Exit as exc:
        return exc.code
    except ConversionError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return exc.exit_code
    except Exception:  # a bug, not the user's input: keep the traceback
        return report_internal_error(PROG, sys.stderr)
    return 0


def console_main() -> None:
    """Console-script entry point (``tfjs_pb2json``)."""
    tf_env.exit_process(main())
