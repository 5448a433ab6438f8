"""Top-k accuracy over a validation set sharded across ranks, with exact counts."""
from __future__ import annotations

import sys

import numpy as np
import paddle
from paddle.io import DataLoader, Dataset, Subset

from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.losses.rdrop import cross_entropy


def topk_correct(logits: np.ndarray, labels: np.ndarray, ks=(1, 5)) -> list[int]:
    """Number of samples whose label is among the ``k`` highest logits, for each k.

    Ties are broken by a stable sort on the negated logits (lower class index first).
    """
    order = np.argsort(-logits, axis=1, kind="stable")
    hits = order == labels[:, None]
    return [int(hits[:, :min(k, logits.shape[1])].any(axis=1).sum()) for k in ks]


def shard(dataset: Dataset) -> Dataset:
    """This rank's samples ``rank, rank + world, ...``: no padding, no sample twice."""
    if dist.world_size() == 1:
        return dataset
    return Subset(dataset, list(range(dist.rank(), len(dataset), dist.world_size())))


@paddle.no_grad()
def evaluate(model: paddle.nn.Layer, loader: DataLoader, show_progress: bool = False) -> dict:
    """``{'top1', 'top5', 'loss', 'count'}`` over the whole (sharded) set, summed over ranks."""
    was_training = model.training
    model.eval()
    totals = np.zeros(4)  # top1 hits, top5 hits, summed NLL, samples
    if show_progress and sys.stderr.isatty():
        from tqdm import tqdm

        loader = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    for images, labels in loader:
        logits = model(images).astype("float32")
        nll = cross_entropy(logits, labels, reduction="sum")
        y = labels.numpy().reshape(-1)
        totals += [*topk_correct(logits.numpy(), y), float(nll), len(y)]
    top1, top5, nll, count = dist.all_reduce_sum(totals.tolist())
    if was_training:
        model.train()
    count = max(count, 1)
    return {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count,
            "loss": nll / count, "count": int(count)}
