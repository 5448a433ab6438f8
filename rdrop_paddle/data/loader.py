"""Batches read ahead in a background thread, with or without DataLoader worker processes.

Paddle's single-process DataLoader reads in a thread of its own and never reports an
exception raised there: the training loop waits forever (a bad sample, a sampler error).
Here, with ``num_workers = 0``, a thread of ours reads the data set and hands every
batch, or the exception, to the loop; with workers, Paddle's multi-process DataLoader
(which does report worker errors and deaths) is drained by that thread.  Either way the
main thread only waits on a Python queue, so signal handlers keep running.

Workers are created with ``PR_SET_PDEATHSIG``: if the training process is killed, the
kernel kills them too instead of leaving them holding shared memory.
"""
from __future__ import annotations

import ctypes
import queue
import signal
import sys
import threading
from typing import Iterable

import numpy as np
import paddle
from paddle.io import DataLoader, Dataset

from rdrop_paddle.errors import DataLoadingError

_END = object()
_ERROR = "__rdrop_paddle_data_error__"


def die_with_parent(worker_id: int = 0) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; else nothing)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def collate(items: list) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*(item[:2] for item in items))
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _replaced(items: list) -> list[str]:
    """The unreadable files that samples of ``items`` replaced (``Data.skip_bad_images``)."""
    return [path for item in items if len(item) == 3 for path in item[2]]


class _Error:
    def __init__(self, message: str) -> None:
        self.message = message


class _Captured(Dataset):
    """``dataset[key]``, with an exception turned into data: a DataLoader worker then
    reports it by name (Paddle's own path for worker errors ends in a generic
    ``Blocking queue is killed``)."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return key, self.dataset[key]
        except Exception as e:  # noqa: BLE001 - reported to the training loop below
            return _Error(f"{type(e).__name__}: {e} (sample {key!r})")


class _Collate:
    """A batch ``[inputs, targets]`` (plus the replaced files, if any), ``batch_op`` applied
    to it, or ``[array, tag, message]`` (Paddle's reader ends on a batch without arrays)."""

    def __init__(self, batch_op=None, collate_fn=collate) -> None:
        self.batch_op, self.collate = batch_op, collate_fn

    def __call__(self, items: list) -> list:
        errors = [item for item in items if isinstance(item, _Error)]
        if errors:
            return [np.zeros(1, np.float32), _ERROR, errors[0].message]
        keys, items = zip(*items)
        try:
            batch = list(self.collate(items))
            if self.batch_op is not None:
                batch = list(self.batch_op(*batch, list(keys)))
        except Exception as e:  # noqa: BLE001 - reported to the training loop
            return [np.zeros(1, np.float32), _ERROR, f"{type(e).__name__}: {e}"]
        replaced = _replaced(items)
        return batch + ["\n".join(replaced)] if replaced else batch


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Loader:
    """``(inputs, labels)`` Paddle tensors of ``dataset[k]`` for each batch ``ks`` of ``batch_sampler``.

    Args:
        dataset: a map-style data set returning ``(array, label)``; its ``collate(items)``, if it
            has one, makes the batch (text: a dict of padded arrays), else the arrays are stacked.
        batch_sampler: an iterable of lists of keys (finite or endless).
        num_workers: DataLoader worker processes (0: read in a thread of this process).
        prefetch: batches read ahead.
        batch_op: ``batch_op(inputs, labels, keys) -> (inputs, targets)``, run where the batch
            is collated (a DataLoader worker), e.g. Mixup seeded by the batch's keys; or None.

    ``replaced`` lists the unreadable files that samples replaced so far (``Data.skip_bad_images``).
    """

    def __init__(self, dataset: Dataset, batch_sampler: Iterable, num_workers: int = 0,
                 prefetch: int = 2, batch_op=None) -> None:
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers, self.prefetch, self.batch_op = num_workers, prefetch, batch_op
        self.replaced: list[str] = []

    def _source(self):
        dataset = _Captured(self.dataset)
        collate_fn = _Collate(self.batch_op, getattr(self.dataset, "collate", collate))
        if self.num_workers == 0:
            return (collate_fn([dataset[k] for k in keys]) for keys in self.batch_sampler)
        loader = DataLoader(dataset, batch_sampler=self.batch_sampler, num_workers=self.num_workers,
                            collate_fn=collate_fn, worker_init_fn=die_with_parent, use_shared_memory=True)
        return iter(loader)  # created here, in the caller's thread: Paddle sets signal handlers

    @staticmethod
    def _pump(source, out: queue.Queue, done: threading.Event) -> None:
        def put(item) -> bool:
            while not done.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for batch in source:
                if not put(batch):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer, which raises it
            put(_Failure(e))

    def __iter__(self):
        source = self._source()
        out, done = queue.Queue(maxsize=self.prefetch), threading.Event()
        thread = threading.Thread(target=self._pump, args=(source, out, done), daemon=True,
                                  name="rdrop-loader")
        thread.start()
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    e = item.error
                    raise DataLoadingError(f"data loading failed: {type(e).__name__}: {e}") from e
                if len(item) == 3 and isinstance(item[1], str) and item[1] == _ERROR:
                    raise DataLoadingError(f"data loading failed: {item[2]}")
                images, labels = item[:2]
                if len(item) == 3:
                    self.replaced += str(item[2]).split("\n")
                if isinstance(images, dict):  # named inputs (text: input_ids, token_type_ids, ...)
                    images = {k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in images.items()}
                elif isinstance(images, np.ndarray):
                    images = paddle.to_tensor(images)
                if isinstance(labels, np.ndarray):
                    labels = paddle.to_tensor(labels)
                yield images, labels
        finally:
            done.set()
            shutdown = getattr(source, "_try_shutdown_all", None)  # Paddle's worker iterator
            if shutdown is not None:
                shutdown()
