"""Classification metrics from a confusion matrix: the GLUE ones (F1 for MRPC and QQP,
Matthews correlation for CoLA), as percentages like top-1."""
from __future__ import annotations

import numpy as np


def confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, C]`` counts: row = true class, column = predicted class."""
    out = np.zeros((num_classes, num_classes))
    np.add.at(out, (labels, predictions), 1)
    return out


def f1(matrix: np.ndarray) -> float:
    """F1 of class 1 for two classes (sklearn's ``f1_score`` default, GLUE's), else the
    unweighted mean of the per-class F1 (``average='macro'``); in percent."""
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    denominator = predicted + actual
    scores = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return 100.0 * float(scores[1] if len(scores) == 2 else scores.mean())


def mcc(matrix: np.ndarray) -> float:
    """Matthews correlation coefficient (Gorodkin's multi-class form, sklearn's
    ``matthews_corrcoef``; 0 when undefined), in percent."""
    t, p = matrix.sum(axis=1), matrix.sum(axis=0)
    s, c = matrix.sum(), np.trace(matrix)
    cov = c * s - float(t @ p)
    denominator = np.sqrt((s * s - float(p @ p)) * (s * s - float(t @ t)))
    return 100.0 * float(cov / denominator) if denominator > 0 else 0.0
