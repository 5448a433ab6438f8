"""Running a command: process setup, ``-c CONFIG -o Section.key=value`` parsing, one-line errors.

``python tools/train.py ...`` and the ``rdrop-train`` console script both end in
:func:`main`, which sets the CPU environment before anything imports paddle, then runs
the command module's ``run(args)``.  Bad input prints one ``error: ...`` line and exits 2;
a run that cannot go on (divergence, a failing data loader) exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Optional, Sequence

from rdrop_paddle.errors import DataLoadingError, TrainingDiverged, UserInputError

COMMANDS = {name: f"rdrop_paddle.commands.{module}" for name, module in (
    ("train", "train"), ("eval", "evaluate"), ("export", "export"), ("infer", "infer"),
    ("convert", "convert"), ("align", "align"), ("compare", "compare"), ("study", "study"),
    ("plot_logs", "plot_logs"))}


def config_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. -o Global.max_steps=10")
    return parser


def _error_line(e: BaseException) -> str:
    return "error: " + " ".join(str(e).split())


def run_safely(task: Callable[[], object]) -> int:
    """Run ``task``; known errors become one ``error:`` line and an exit status."""
    try:
        result = task()
    except UserInputError as e:
        print(_error_line(e), file=sys.stderr)
        return 2
    except (TrainingDiverged, DataLoadingError) as e:
        print(_error_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def main(command: str, argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of every tool: configure the process, parse, run, exit."""
    from rdrop_paddle.cpu import configure_environment

    configure_environment()  # before the command module imports paddle
    try:
        from rdrop_paddle.compat import check_paddle

        check_paddle()
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(COMMANDS[command])
    parser = module.build_parser()

    def one_line_error(message: str) -> None:  # argparse's usage + message, as one line
        print(f"error: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = one_line_error
    args = parser.parse_args(argv)
    sys.exit(run_safely(lambda: module.run(args)))


def _entry(command: str) -> Callable[[], None]:
    def entry() -> None:
        main(command)
    entry.__name__ = command
    return entry


train, eval_, export, infer, convert, align, compare, study, plot_logs = (
    _entry(c) for c in ("train", "eval", "export", "infer", "convert", "align", "compare", "study",
                        "plot_logs"))
