"""Quieting Paddle's own start-up and tracing chatter without hiding anything else.

Paddle writes some of it from C++ (glog) and some from Python, to both standard streams,
so the capture works on file descriptors 1 and 2, not on ``sys.stdout``.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Callable, Iterator


@contextlib.contextmanager
def filtered_output(drop: Callable[[str], bool], keep_on_failure: bool = True) -> Iterator[None]:
    """Run the block with file descriptors 1 and 2 captured; afterwards write back, each to
    its own stream, every line for which ``drop`` is false — or, if the block raised and
    ``keep_on_failure``, every line, so that nothing explaining a failure is lost (without it,
    the caller's error message is the whole explanation)."""
    streams = ((1, sys.stdout), (2, sys.stderr))
    for _, stream in streams:
        stream.flush()
    saved = [os.dup(fd) for fd, _ in streams]
    files = [tempfile.TemporaryFile() for _ in streams]
    failed = True
    try:
        for (fd, _), tmp in zip(streams, files):
            os.dup2(tmp.fileno(), fd)
        yield
        failed = False
    finally:
        for (fd, stream), copy, tmp in zip(streams, saved, files):
            stream.flush()
            os.dup2(copy, fd)
            os.close(copy)
            tmp.seek(0)
            lines = tmp.read().decode(errors="replace").splitlines(keepends=True)
            tmp.close()
            stream.writelines(line for line in lines if (failed and keep_on_failure) or not (failed or drop(line)))
            stream.flush()


def silence_stdout() -> None:
    """Point file descriptor 1 at ``/dev/null``: its reader is gone (``tool | head``), so
    nothing more is written there and Python's exit flush raises no ``BrokenPipeError``."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
