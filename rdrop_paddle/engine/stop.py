"""SIGTERM during training: save at the next step boundary, or end within a bounded time.

A preempted AI Studio script task, or ``paddle.distributed.launch`` stopping its
workers, sends SIGTERM.  :class:`StopSignal` sets a flag that the training loop reads at
each step boundary (it saves a checkpoint and exits 0).  A Python signal handler only
runs when the main thread executes Python code, so the flag alone cannot end a process
stuck in C++ (a collective waiting for a dead rank).  The handler is therefore paired
with ``signal.set_wakeup_fd``: the C-level handler writes the signal number to a pipe at
once, and a watchdog thread reading that pipe ends the process with status 143 (and one
line on stderr) if no step boundary came within ``timeout`` seconds.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable, Optional


class StopSignal:
    """Flag set by SIGTERM; ``timeout`` seconds later, a still-running process is ended."""

    def __init__(self, timeout: float, on_timeout: Optional[Callable[[], str]] = None) -> None:
        self.timeout, self.on_timeout = timeout, on_timeout
        self.raised = threading.Event()
        self._finished = threading.Event()
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._read, write = os.pipe()
        os.set_blocking(write, False)
        self._write = write
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, daemon=True, name="rdrop-sigterm").start()

    def _handle(self, signum, frame) -> None:
        self.raised.set()

    def _watch(self) -> None:
        try:
            while not self._finished.is_set():
                data = os.read(self._read, 64)
                if not data:
                    return
                if signal.SIGTERM in data:
                    self.raised.set()
                    if not self._finished.wait(self.timeout):
                        detail = self.on_timeout() if self.on_timeout else ""
                        sys.stderr.write(f"error: SIGTERM: no step boundary within {self.timeout:g} s; "
                                         f"exiting without saving{detail}\n")
                        sys.stderr.flush()
                        os._exit(128 + signal.SIGTERM)
                    return
        except OSError:
            return
        finally:
            os.close(self._read)

    def __bool__(self) -> bool:
        return self.raised.is_set()

    def close(self) -> None:
        """Restore the previous handler and stop the watchdog (the run is over)."""
        self._finished.set()
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGTERM, self._previous)
        os.close(self._write)  # the watchdog reads end-of-file and returns
