"""Rank-0 logging: text lines to stdout and ``train.log``, scalars to VisualDL."""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

LOGGER_NAME = "rdrop_paddle"


def setup_logger(output_dir: Optional[str], is_main: bool, filename: str = "train.log") -> logging.Logger:
    """Logger that prints on the main rank only (and appends to ``output_dir/filename``)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.ERROR)
    fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if is_main and output_dir:
        handlers.append(logging.FileHandler(os.path.join(output_dir, filename), encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger


class ScalarWriter:
    """VisualDL ``LogWriter`` on the main rank; a no-op elsewhere."""

    def __init__(self, logdir: str, enabled: bool) -> None:
        self._writer = None
        if enabled:
            from visualdl import LogWriter

            self._writer = LogWriter(logdir=logdir)

    def add(self, scalars: dict, step: int) -> None:
        if self._writer is not None:
            for tag, value in scalars.items():
                self._writer.add_scalar(tag=tag, value=float(value), step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
