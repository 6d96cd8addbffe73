"""``tensorflowjs_wizard``'s entry point: check the terminal, ask, print the command and
the Bazel target, run the converter."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO

from tfjsconv import tf_env
from tfjsconv.errors import report_internal_error
from tfjsconv.wizard.detect import CONVERTER, PROG, USAGE, WizardError
from tfjsconv.wizard.prompts import Prompts, ask
from tfjsconv.wizard.render import bazel_target, build_argv, format_command


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the wizard; return the exit code (the converter's when it runs)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["-h"], ["--help"]):
        print(USAGE, file=stdout)
        return 0
    if argv not in ([], ["--dryrun"]):
        print(USAGE, file=stderr)
        return 2
    dryrun = argv == ["--dryrun"]
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        print(
            f"{PROG}: error: the wizard is interactive and needs a terminal; in scripts "
            f"and builds call {CONVERTER} with flags instead",
            file=stderr,
        )
        return 2
    try:
        import questionary
    except ImportError:
        print(f"{PROG}: error: the wizard needs questionary: pip install questionary", file=stderr)
        return 1

    def say(msg: str) -> None:
        print(msg, file=stdout, flush=True)

    try:
        answers = ask(Prompts(questionary), say)
    except (KeyboardInterrupt, EOFError):
        print(f"{PROG}: cancelled; nothing was converted", file=stderr)
        return 130
    except WizardError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 1
    except Exception:  # a bug in the wizard: keep the traceback
        return report_internal_error(PROG, stderr)

    conv_argv = build_argv(answers)
    say("\nConverter command:\n  " + format_command(conv_argv))
    say("\nEquivalent Bazel target (BUILD.bazel):\n" + bazel_target(answers, os.getcwd()) + "\n")
    if dryrun:
        say("--dryrun: not converting.")
        return 0
    from tfjsconv import cli

    return cli.main(conv_argv, stdout=stdout, stderr=stderr)


def console_main() -> None:
    tf_env.exit_process(main())
