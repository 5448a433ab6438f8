"""Rank-0 logging: text lines to stdout and ``train.log``, scalars to VisualDL."""
from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from typing import Optional

from rdrop_paddle.io import open_regular
from rdrop_paddle.utils.capture import silence_stdout

LOGGER_NAME = "rdrop_paddle"


class LogFile(logging.FileHandler):
    """``train.log``, appended to without following a planted link (:func:`~rdrop_paddle.io.open_regular`).
    A write that fails (a full disk) is reported once on stderr; the run goes on logging to
    stdout, instead of printing a ``--- Logging error ---`` block per line."""

    def _open(self):
        fd = open_regular(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        return os.fdopen(fd, "a", encoding=self.encoding)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or error
        logger = logging.getLogger(LOGGER_NAME)
        logger.removeHandler(self)
        sys.stderr.write(f"notice: cannot write {self.baseFilename} ({reason}); from here on the log "
                         f"goes to stdout only\n")
        try:
            self.close()
        except OSError:
            pass


def setup_logger(output_dir: Optional[str], is_main: bool, filename: str = "train.log") -> logging.Logger:
    """Logger that prints on the main rank only (and appends to ``output_dir/filename``)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.ERROR)
    fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [_Stdout(sys.stdout)]
    if is_main and output_dir:
        handlers.append(LogFile(os.path.join(output_dir, filename), encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger


class _Stdout(logging.StreamHandler):
    """The log on stdout; when its reader is gone (``train.py | head``) the run goes on,
    logging to ``train.log`` only, with no ``--- Logging error ---`` block."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError):
            return super().handleError(record)
        logging.getLogger(LOGGER_NAME).removeHandler(self)
        silence_stdout()


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


class Meter:
    """Means over the steps since the last log line: loss/ce/kl, ``reader_cost`` (seconds a
    step waited for data) and ``batch_cost`` (seconds per step, waiting included), as
    PaddleClas logs them; samples/s and ETA.  The line is PaddleClas's ``key: value, ...``
    form, which Paddle's log parsers read (``--keyword ips: --convergence_key loss:``; the
    evaluation lines say ``val_loss:``).  With ``mem_info`` (``Global.print_mem_info``, as
    PaddleClas's runner asks) each line ends with the peak memory: ``max_mem_reserved`` and
    ``max_mem_allocated`` on a GPU, the process's peak resident set ``max_rss`` on the CPU."""

    def __init__(self, start: int, max_steps: int, batch_size: int, mem_info: bool = False) -> None:
        self.start, self.max_steps, self.batch_size = start, max_steps, batch_size
        self.mem_info = mem_info
        self.last, self.sums = start, [0.0, 0.0, 0.0, 0.0]
        self.t_start = self.t_last = time.perf_counter()

    def update(self, loss: float, ce: float, kl: float, reader_seconds: float) -> None:
        self.sums = [s + v for s, v in zip(self.sums, (loss, ce, kl, reader_seconds))]

    def log(self, log: logging.Logger, writer: ScalarWriter, step: int, lr: float,
            grad_norm: float, loss_scale: Optional[float]) -> None:
        """One log line and the VisualDL scalars for the window ending at ``step``."""
        now, n = time.perf_counter(), step - self.last
        m = dict(zip(("loss", "ce", "kl", "reader_cost"), (s / n for s in self.sums)))
        m["batch_cost"] = (now - self.t_last) / n
        m["ips"] = self.batch_size / m["batch_cost"]
        eta = (now - self.t_start) / (step - self.start) * (self.max_steps - step)
        self.last, self.sums, self.t_last = step, [0.0] * 4, now
        log.info(f"[Train][step {step}/{self.max_steps}] loss: {m['loss']:.5f}, ce: {m['ce']:.5f}, "
                 f"kl: {m['kl']:.5f}, lr: {lr:.3e}, grad_norm: {grad_norm:.5f}, "
                 f"reader_cost: {m['reader_cost']:.5f} s, batch_cost: {m['batch_cost']:.5f} s, "
                 f"ips: {m['ips']:.1f} samples/s, eta: {datetime.timedelta(seconds=round(eta))}"
                 + (f", loss_scale: {loss_scale:g}" if loss_scale else "") + (_memory() if self.mem_info else ""))
        writer.add({f"train/{k}": m[k] for k in ("loss", "ce", "kl", "ips", "reader_cost", "batch_cost")}
                   | {"train/lr": lr, "train/grad_norm": grad_norm}
                   | ({"train/loss_scale": loss_scale} if loss_scale else {}), step)


def _memory() -> str:
    """Peak memory so far, as PaddleClas's ``print_mem_info`` logs it (MB)."""
    import paddle

    if paddle.device.is_compiled_with_cuda() and paddle.device.get_device().startswith("gpu"):
        return (f", max_mem_reserved: {paddle.device.cuda.max_memory_reserved() >> 20} MB, "
                f"max_mem_allocated: {paddle.device.cuda.max_memory_allocated() >> 20} MB")
    import resource

    return f", max_rss: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MB"
