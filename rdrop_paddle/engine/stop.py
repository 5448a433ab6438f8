"""SIGTERM and Ctrl-C during training: save at the next step boundary, or end within a bounded time.

A preempted AI Studio script task, or ``paddle.distributed.launch`` stopping its
workers, sends SIGTERM; a user at a terminal presses Ctrl-C (SIGINT).  :class:`StopSignal`
treats both alike: it sets a flag that the training loop reads at each step boundary (it
saves a checkpoint and exits: 0 after SIGTERM, 130 after Ctrl-C).  No ``KeyboardInterrupt``
is raised, so an interrupt never lands inside an operator or a custom backward.

A Python signal handler only runs when the main thread executes Python code, so the flag
alone cannot end a process stuck in C++ (a collective waiting for a dead rank).  The
handler is therefore paired with ``signal.set_wakeup_fd``: the C-level handler writes the
signal number to a pipe at once, and a watchdog thread reading that pipe

- ends the process with status 143 (and one line on stderr) if no step boundary came
  within ``timeout`` seconds of the first signal;
- ends it at once with status 130 on a Ctrl-C after the first signal (checkpoints are
  renamed into place whole, so this never leaves a partial one; the next run removes an
  unfinished save).

A second SIGTERM changes nothing; after :meth:`close` of a stopped run, further SIGTERM
and SIGINT are ignored, so a late signal cannot turn a completed save into a failure.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable, Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Flag set by SIGTERM or SIGINT; ``timeout`` seconds later, a still-running process is ended."""

    def __init__(self, timeout: float, on_timeout: Optional[Callable[[], str]] = None) -> None:
        self.timeout, self.on_timeout = timeout, on_timeout
        self.name: Optional[str] = None  # "SIGTERM" or "SIGINT" once stopped
        self.raised = threading.Event()
        self._finished = threading.Event()
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        self._read, write = os.pipe()
        os.set_blocking(write, False)
        self._write = write
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, daemon=True, name="rdrop-stop").start()

    def _handle(self, signum, frame) -> None:
        self._record(signum)

    def _record(self, signum: int) -> None:
        if self.name is None:
            self.name = signal.Signals(signum).name
        self.raised.set()

    def _exit(self, status: int, why: str) -> None:
        detail = self.on_timeout() if self.on_timeout else ""
        sys.stderr.write(f"error: {why}; exiting without saving{detail}\n")
        sys.stderr.flush()
        os._exit(status)

    def _watch(self) -> None:
        deadline_thread = None
        try:
            while not self._finished.is_set():
                data = os.read(self._read, 64)
                if not data:
                    return
                for signum in data:
                    if signum not in SIGNALS or self._finished.is_set():
                        continue
                    if signum == signal.SIGINT and deadline_thread is not None:
                        self._exit(130, "Ctrl-C while stopping")
                    self._record(signum)
                    if deadline_thread is None:
                        deadline_thread = threading.Thread(target=self._deadline, daemon=True,
                                                           name="rdrop-stop-deadline")
                        deadline_thread.start()
        except OSError:
            return
        finally:
            os.close(self._read)

    def _deadline(self) -> None:
        if not self._finished.wait(self.timeout):
            self._exit(128 + signal.SIGTERM, f"{self.name}: no step boundary within {self.timeout:g} s")

    def __bool__(self) -> bool:
        return self.raised.is_set()

    def close(self) -> None:
        """Stop the watchdog (the run is over).  The previous handlers come back, unless a
        signal stopped the run: then later ones are ignored while the process exits."""
        self._finished.set()
        signal.set_wakeup_fd(self._previous_fd)
        for s, previous in self._previous.items():
            signal.signal(s, signal.SIG_IGN if self.raised.is_set() else previous)
        os.close(self._write)  # the watchdog reads end-of-file and returns
