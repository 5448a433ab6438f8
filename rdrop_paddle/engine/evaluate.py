"""Top-k accuracy and NLL (classification), or correlation and MSE (regression), over a
validation set sharded across ranks, with exact counts."""
from __future__ import annotations

import sys
from typing import Callable, Optional

import numpy as np
import paddle

from rdrop_paddle.data.loader import Loader
from rdrop_paddle.data.sampler import eval_batches
from rdrop_paddle.engine import agreement
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.metrics import class_counts, f1, mcc, pearson, spearman
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


def evaluate_run(measure: Callable, model: paddle.nn.Layer, raw: paddle.nn.Layer, ema) -> Optional[dict]:
    """``measure(model)`` (the task's metrics, None when stopped); with an EMA (of ``raw``, the
    layer ``model`` runs) also of the averaged weights, each metric prefixed ``ema_``."""
    metrics = measure(model)
    if metrics is None or ema is None:
        return metrics
    with ema.applied(raw):
        averaged = measure(model)
    if averaged is None:
        return None
    return {**metrics, **{f"ema_{k}": v for k, v in averaged.items() if k != "count" and isinstance(v, float)}}


def _run(model: paddle.nn.Layer, loader, consume: Callable, show_progress: bool,
         should_stop: Optional[Callable[[], bool]]) -> bool:
    """Call ``consume(outputs, labels)`` (NumPy float32, int or float labels) for each batch of
    ``loader`` under ``model.eval()``; False if ``should_stop()`` became true on any rank.  A
    rank whose data fails makes every rank raise its error."""
    was_training = model.training
    model.eval()
    if show_progress and sys.stderr.isatty():
        from tqdm import tqdm

        loader = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    stopped, failure = False, None
    try:
        for inputs, labels in loader:
            if should_stop is not None and should_stop():
                stopped = True
                break
            consume(call(model, inputs).astype("float32"), labels)
    except DataLoadingError as e:  # the other ranks learn of it below instead of waiting
        if dist.world_size() == 1:
            raise
        failure = e
    flags = dist.all_reduce_sum([float(stopped), float(failure is not None)])
    if flags[1] > 0:
        agreement.share_failure(failure)
    if was_training:
        model.train()
    return flags[0] == 0


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
    totals = np.zeros(4)  # top1 hits, top5 hits, summed NLL, samples
    per_class = np.zeros((2, num_classes))  # top-1 hits and samples of each class
    counts = np.zeros((3, confusion_classes))  # per class: hits, predictions, samples

    def consume(logits, labels):
        nll = float(cross_entropy(logits, labels, reduction="sum"))
        values = logits.numpy()
        if not np.isfinite(values).all():
            nll = float("nan")
        y = labels.numpy().reshape(-1)
        totals[:] += [*topk_correct(values, y), nll, len(y)]
        if confusion_classes:
            counts[:] += class_counts(y, values.argmax(axis=1), confusion_classes)
        if num_classes:
            np.add.at(per_class, (0, y), (values.argmax(axis=1) == y))
            np.add.at(per_class, (1, y), 1)

    if not _run(model, loader, consume, show_progress, should_stop):
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


@paddle.no_grad()
def evaluate_regression(model: paddle.nn.Layer, loader, show_progress: bool = False,
                        should_stop: Optional[Callable[[], bool]] = None) -> Optional[dict]:
    """``{'pearson', 'spearman', 'loss', 'count'}`` (percent; ``loss`` the MSE) of a model with one
    output over the whole (sharded) set.  Rank correlation needs every prediction: rank ``r``'s
    ``k``-th sample is sample ``r + k * world`` (:func:`eval_batches`), so the ranks sum
    vectors holding their own samples' places and every rank gets the whole set."""
    predictions, targets = [], []

    def consume(outputs, labels):
        predictions.append(outputs.numpy().reshape(-1))
        targets.append(labels.numpy().astype(np.float64).reshape(-1))

    if not _run(model, loader, consume, show_progress, should_stop):
        return None
    mine = np.concatenate(predictions or [np.zeros(0)]), np.concatenate(targets or [np.zeros(0)])
    count = int(dist.all_reduce_sum([float(len(mine[0]))])[0])
    if count == 0:
        raise UserInputError("evaluation over an empty validation set")
    places = np.arange(dist.rank(), count, dist.world_size())[:len(mine[0])]
    whole = np.zeros((2, count))
    whole[:, places] = mine
    prediction, target = np.asarray(dist.all_reduce_sum(whole.ravel().tolist())).reshape(2, count)
    loss = float(np.mean(np.square(prediction - target))) if np.isfinite(prediction).all() else float("nan")
    return {"pearson": pearson(prediction, target), "spearman": spearman(prediction, target), "loss": loss,
            "count": count}
