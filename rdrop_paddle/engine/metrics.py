"""The GLUE metrics beyond accuracy, as percentages like top-1: from per-class counts F1 (MRPC,
QQP) and Matthews correlation (CoLA); from predicted and true scores Pearson and Spearman
correlation (STS-B).  For classification  Everything is linear in the class count
(three counts per class, never a ``C x C`` confusion matrix), so 100,000 classes cost
2.4 MB, not 80 GB."""
from __future__ import annotations

import numpy as np


def class_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``[3, C]`` counts: per class its true positives, its predictions and its samples."""
    labels, predictions = np.asarray(labels).reshape(-1), np.asarray(predictions).reshape(-1)
    hits = labels[labels == predictions]
    return np.stack([np.bincount(hits, minlength=num_classes), np.bincount(predictions, minlength=num_classes),
                     np.bincount(labels, minlength=num_classes)]).astype(np.float64)


def f1(counts: np.ndarray) -> float:
    """F1 of class 1 for two classes (sklearn's ``f1_score`` default, GLUE's), else the
    unweighted mean of the per-class F1 (``average='macro'``); in percent."""
    tp, predicted, actual = counts
    denominator = predicted + actual
    scores = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return 100.0 * float(scores[1] if len(scores) == 2 else scores.mean())


def mcc(counts: np.ndarray) -> float:
    """Matthews correlation coefficient (Gorodkin's multi-class form, sklearn's
    ``matthews_corrcoef``; 0 when undefined), in percent: ``(c s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t))``
    with ``c`` the correct predictions, ``s`` the samples, ``t``/``p`` the per-class true/predicted counts."""
    tp, p, t = counts
    s, c = t.sum(), tp.sum()
    cov = c * s - float(t @ p)
    denominator = np.sqrt((s * s - float(p @ p)) * (s * s - float(t @ t)))
    return 100.0 * float(cov / denominator) if denominator > 0 else 0.0


def pearson(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Pearson's r in percent (``scipy.stats.pearsonr``); 0 when either side is constant."""
    x, y = (np.asarray(v, np.float64).reshape(-1) for v in (predictions, targets))
    x, y = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt(float(x @ x) * float(y @ y)))
    return 100.0 * float(x @ y) / denominator if denominator > 0 else 0.0


def spearman(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Spearman's rho in percent: Pearson's r of the ranks, ties sharing their mean rank
    (``scipy.stats.spearmanr``)."""
    from scipy.stats import rankdata

    return pearson(rankdata(np.asarray(predictions).reshape(-1)), rankdata(np.asarray(targets).reshape(-1)))
