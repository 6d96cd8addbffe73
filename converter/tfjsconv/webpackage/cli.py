"""``tfjs_web_package``: the command line of the web packaging (and the Bazel action's entry).

    tfjs_web_package MODEL_DIR OUTPUT_DIR --package_name mlp-web --version 1.0.0

Prints the one-line size summary; errors are one line with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO

from tfjsconv.errors import ConversionError, UsageError, report_internal_error

PROG = "tfjs_web_package"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the Bazel action can call main again."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description="Package a converted TensorFlow.js model as an npm package for web apps."
    )
    p.add_argument("model_dir", help="directory holding model.json and its weight shards")
    p.add_argument("output_dir", help="the package directory to write (must not exist, or be empty)")
    p.add_argument("--package_name", required=True, help="npm package name, e.g. @acme/mobilenet-web")
    p.add_argument("--version", required=True, help="package version (SemVer), e.g. 1.0.0")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument(
        "--follow_symlinks", action="store_true", help="accept shards that are symlinks (sandboxes)"
    )
    p.add_argument("--quiet", action="store_true", help="do not print the summary line")
    return p


def main(argv: Sequence[str], stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run once; return the exit code (never calls sys.exit)."""
    from tfjsconv.webpackage.package import build_web_package

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = parser().parse_args(list(argv))
        result = build_web_package(
            args.model_dir,
            args.output_dir,
            args.package_name,
            args.version,
            overwrite=args.overwrite,
            follow_symlinks=args.follow_symlinks,
        )
    except ConversionError as exc:
        err.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except Exception:  # a bug: traceback and a verdict
        return report_internal_error(PROG, err)
    if not args.quiet:
        out.write(result.summary + "\n")
    return 0


def console_main() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
