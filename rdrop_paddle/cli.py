"""Running a command: process setup, ``-c CONFIG -o Section.key=value`` parsing, one-line errors.

``python tools/train.py ...`` and the ``rdrop-train`` console script both end in
:func:`main`, which parses the arguments (``--help`` and argument errors import no
paddle), sets the CPU environment before anything imports paddle, then runs the command
module's ``run(args)``.  Bad input prints one ``error: ...`` line and exits 2;
a run that cannot go on (divergence, a failing data loader, a failed rank) exits 1.
"""
from __future__ import annotations

import importlib
import signal
import sys
from typing import Callable, Optional, Sequence

from rdrop_paddle.errors import DataLoadingError, RankFailed, TrainingDiverged, UserInputError
from rdrop_paddle.utils import signals

# command -> (its module, its parser in rdrop_paddle.commands.arguments)
COMMANDS = {name: (f"rdrop_paddle.commands.{module}", module) for name, module in (
    ("train", "train"), ("eval", "evaluate"), ("export", "export"), ("infer", "infer"),
    ("convert", "convert"), ("align", "align"), ("compare", "compare"), ("study", "study"),
    ("plot_logs", "plot_logs"), ("demo_images", "demo_images"), ("demo_text", "demo_text"))}


def _error_line(e: BaseException) -> str:
    """One line; characters a terminal would act on (NUL, escapes) shown escaped."""
    from rdrop_paddle.utils.terminal import printable

    return "error: " + printable(" ".join(str(e).split()))


def run_safely(task: Callable[[], object]) -> int:
    """Run ``task``; known errors become one ``error:`` line and an exit status."""
    try:
        result = task()
    except UserInputError as e:
        print(_error_line(e), file=sys.stderr)
        return 2
    except (TrainingDiverged, DataLoadingError, RankFailed) as e:
        print(_error_line(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def main(command: str, argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of every tool: parse (without importing paddle), configure the process,
    run, exit."""
    signals.install()
    try:
        _main(command, argv)
    except BrokenPipeError:  # tool | head
        from rdrop_paddle.utils.capture import silence_stdout

        silence_stdout()
        sys.exit(141)  # as a shell reports a command stopped by SIGPIPE


def _main(command: str, argv: Optional[Sequence[str]]) -> None:
    from rdrop_paddle.commands import arguments

    parser = arguments.one_line_errors(getattr(arguments, COMMANDS[command][1])())
    args = parser.parse_args(argv)
    from rdrop_paddle.compat import check_paddle
    from rdrop_paddle.cpu.process import configure_environment, quiet_start

    configure_environment()  # before the command module imports paddle
    # Importing Paddle installs its C++ handler for SIGINT/SIGTERM (behind Python's back): a
    # signal in that window met it (a silent -15, or a hang in its non-reentrant stack dump).
    # So both are held until ours are back; one that came meanwhile is delivered to ours then.
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        try:
            with quiet_start():
                check_paddle()
        except ImportError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        module = importlib.import_module(COMMANDS[command][0])
        signals.install()  # again: importing Paddle installed its own
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    status = run_safely(lambda: module.run(args))
    sys.stdout.flush()  # a closed pipe shows here, inside main's handler
    sys.exit(status)


def _entry(command: str) -> Callable[[], None]:
    def entry() -> None:
        main(command)
    entry.__name__ = command
    return entry


train, eval_, export, infer, convert, align, compare, study, plot_logs, demo_images, demo_text = (
    _entry(c) for c in ("train", "eval", "export", "infer", "convert", "align", "compare", "study",
                        "plot_logs", "demo_images", "demo_text"))
