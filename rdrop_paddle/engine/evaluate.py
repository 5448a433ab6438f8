"""Top-k accuracy and NLL over a validation set sharded across ranks, with exact counts."""
from __future__ import annotations

import sys
from typing import Callable, Optional

import numpy as np
import paddle

from rdrop_paddle.data.loader import Loader
from rdrop_paddle.data.sampler import eval_batches
from rdrop_paddle.engine import agreement
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.metrics import class_counts, f1, mcc
from rdrop_paddle.errors import DataLoadingError, UserInputError
from rdrop_paddle.losses import cross_entropy
from rdrop_paddle.losses.two_pass import call


def topk_correct(logits: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> list[int]:
    """Number of samples whose label is among the ``k`` highest logits, for each k.

    Ties are broken by a stable sort on the negated logits (lower class index first).
    """
    order = np.argsort(-logits, axis=1, kind="stable")
    hits = order == labels[:, None]
    return [int(hits[:, :min(k, logits.shape[1])].any(axis=1).sum()) for k in ks]


def eval_loader(dataset, batch_size: int, num_workers: int = 0) -> Loader:
    """This rank's shard of ``dataset`` (``rank, rank + world, ...``), in order."""
    return Loader(dataset, eval_batches(len(dataset), batch_size, dist.rank(), dist.world_size()),
                  num_workers)


def evaluate_run(model: paddle.nn.Layer, raw: paddle.nn.Layer, ema, loader, show_progress: bool = False,
                 should_stop: Optional[Callable[[], bool]] = None, confusion_classes: int = 0) -> Optional[dict]:
    """:func:`evaluate` of ``model``; with an EMA (of ``raw``, the layer ``model`` runs) also of
    the averaged weights, as ``ema_top1``, ``ema_top5`` and ``ema_loss``."""
    metrics = evaluate(model, loader, show_progress, should_stop, confusion_classes=confusion_classes)
    if metrics is None or ema is None:
        return metrics
    with ema.applied(raw):
        averaged = evaluate(model, loader, show_progress, should_stop)
    return None if averaged is None else {**metrics, **{f"ema_{k}": averaged[k] for k in ("top1", "top5", "loss")}}


@paddle.no_grad()
def evaluate(model: paddle.nn.Layer, loader, show_progress: bool = False,
             should_stop: Optional[Callable[[], bool]] = None, num_classes: int = 0,
             confusion_classes: int = 0) -> Optional[dict]:
    """``{'top1', 'top5', 'loss', 'count'}`` over the whole (sharded) set, summed over ranks;
    with ``num_classes`` also ``per_class``: ``[hits, samples]`` of each class; with
    ``confusion_classes`` (text: the class count) also ``f1`` and ``mcc`` (:mod:`.metrics`).

    ``loss`` is the mean NLL; it is NaN if any logit was not finite.  Returns None if
    ``should_stop()`` became true on the way (the caller is shutting down).
    """
    was_training = model.training
    model.eval()
    totals = np.zeros(4)  # top1 hits, top5 hits, summed NLL, samples
    per_class = np.zeros((2, num_classes))  # top-1 hits and samples of each class
    counts = np.zeros((3, confusion_classes))  # per class: hits, predictions, samples
    if show_progress and sys.stderr.isatty():
        from tqdm import tqdm

        loader = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    stopped, failure = False, None
    try:
        for images, labels in loader:
            if should_stop is not None and should_stop():
                stopped = True
                break
            logits = call(model, images).astype("float32")
            nll = float(cross_entropy(logits, labels, reduction="sum"))
            values = logits.numpy()
            if not np.isfinite(values).all():
                nll = float("nan")
            y = labels.numpy().reshape(-1)
            totals += [*topk_correct(values, y), nll, len(y)]
            if confusion_classes:
                counts += class_counts(y, values.argmax(axis=1), confusion_classes)
            if num_classes:
                np.add.at(per_class, (0, y), (values.argmax(axis=1) == y))
                np.add.at(per_class, (1, y), 1)
    except DataLoadingError as e:  # the other ranks learn of it below instead of waiting
        if dist.world_size() == 1:
            raise
        failure = e
    flags = dist.all_reduce_sum([float(stopped), float(failure is not None)])
    if flags[1] > 0:
        agreement.share_failure(failure)
    stopped = flags[0] > 0
    if was_training:
        model.train()
    if stopped:
        return None
    summed = dist.all_reduce_sum(totals.tolist() + per_class.ravel().tolist() + counts.ravel().tolist())
    top1, top5, nll, count = summed[:4]
    if count == 0:
        raise UserInputError("evaluation over an empty validation set")
    result = {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count, "loss": nll / count, "count": int(count)}
    if num_classes:
        result["per_class"] = np.asarray(summed[4:4 + 2 * num_classes]).reshape(2, num_classes).astype(int).T.tolist()
    if confusion_classes:
        counts = np.asarray(summed[4 + 2 * num_classes:]).reshape(3, confusion_classes)
        result["f1"], result["mcc"] = f1(counts), mcc(counts)
    return result
