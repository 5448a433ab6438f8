"""SIGINT/SIGTERM outside the training loop: one line and exit 128 + signal.

Stdlib only, so ``tools/_entry.py`` installs it before anything else is imported (a signal
while ``rdrop_paddle.cli`` was importing used to print a ``KeyboardInterrupt`` traceback).
Inside the loop :class:`~rdrop_paddle.engine.stop.StopSignal` takes over and saves at a step.
"""
import os
import signal


def stop_at_once(signum: int, frame) -> None:
    """Start-up, importing Paddle, setting up, evaluating, exporting: nothing half-written can
    stay behind, as every file is renamed into place whole."""
    os.write(2, f"stopped by {signal.Signals(signum).name}\n".encode())
    os._exit(128 + signum)


def install() -> None:
    """Ours, not Python's ``KeyboardInterrupt`` nor the handler Paddle's C++ core installs on
    import (its "Termination signal" block)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_at_once)
