"""The run lock: one training process per output folder."""
from __future__ import annotations

import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import open_regular, refuse_links


class RunLock:
    """An exclusive lock on ``output_dir`` for the life of a training process (``.lock`` must
    be a regular file: a link, FIFO or device there is refused, not written through)."""

    def __init__(self, output_dir: str) -> None:
        import fcntl

        self.path = os.path.join(output_dir, ".lock")
        self.fd = open_regular(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            raise UserInputError(f"{output_dir} is in use by another training run (pid {holder}); "
                                 f"wait for it or choose another Global.output_dir") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def lock_output(output_dir: str, main: bool):
    """Create ``output_dir``; on the main rank refuse links at its run folders and return its
    :class:`RunLock` (None on the other ranks)."""
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"cannot create Global.output_dir {output_dir}: {e.strerror or e}") from None
    if not main:
        return None
    refuse_links(output_dir, ("checkpoints", "vdl"))
    return RunLock(output_dir)
