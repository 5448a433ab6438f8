"""R-Drop losses (Liang et al., NeurIPS 2021, arXiv:2106.14448).

Two dropout passes over the same batch give logits ``p`` and ``q``.  The
paper's per-sample objective is

    Eq. (1)  L_NLL = -log P1(y|x) - log P2(y|x)
    Eq. (2)  L_KL  = 1/2 * (KL(P1 || P2) + KL(P2 || P1))
    Eq. (3)  L     = L_NLL + alpha * L_KL

Log-probabilities are ``z - logsumexp(z)`` in float32: stable for large
logits and under fp16/bf16 autocast.  (Paddle's CPU ``log_softmax`` and
``cross_entropy`` clip log-probabilities at -64, which the PyTorch reference
does not; the cross-entropy here is the NLL of the same log-probabilities.)
"""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn as nn

REDUCTIONS = ("none", "sum", "mean", "batchmean")
CONVENTIONS = ("readme", "vit_src")


def log_softmax(logits: paddle.Tensor) -> paddle.Tensor:
    """Float32 log-probabilities over the last axis, without Paddle's -64 clipping."""
    z = logits.astype("float32")
    return z - paddle.logsumexp(z, axis=-1, keepdim=True)


def cross_entropy(logits: paddle.Tensor, label: paddle.Tensor, reduction: str = "mean") -> paddle.Tensor:
    """Negative log-likelihood of integer labels ``[N]`` under ``[N, C]`` logits ('mean' or 'sum')."""
    logp = log_softmax(logits)
    picked = paddle.take_along_axis(logp, label.reshape([-1, 1]).astype("int64"), axis=-1)
    return -(picked.sum() if reduction == "sum" else picked.mean())


def _kl_elementwise(log_target: paddle.Tensor, log_input: paddle.Tensor) -> paddle.Tensor:
    """Element-wise ``KL(target || input)`` terms: ``t * (log t - log i)``."""
    return paddle.exp(log_target) * (log_target - log_input)


def _reduce(loss: paddle.Tensor, reduction: str) -> paddle.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "batchmean":
        return loss.sum() / loss.shape[0]
    return loss


class RDropLoss(nn.Layer):
    """Bidirectional KL between two passes, Eq. (2); drop-in for ``paddlenlp.losses.RDropLoss``.

    ``forward(p, q, pad_mask)`` returns ``(sum(reduce(KL(q||p))) + sum(reduce(KL(p||q)))) / 2``
    with ``reduce`` one of 'none' (element-wise), 'sum', 'mean' (over all
    elements) or 'batchmean' (sum / batch size), exactly as paddlenlp does.

    Args:
        reduction: 'none' | 'sum' | 'mean' | 'batchmean'.

    ``pad_mask`` follows paddlenlp: **True marks a position that is kept**
    (shape ``[B, T]`` or ``[B, T, 1]``, broadcast over the class axis of
    ``[B, T, C]`` logits).  The official PyTorch snippet uses the opposite
    meaning (True = padding, zeroed with ``masked_fill``); to port such code pass
    ``~pad_mask``.  With a mask, reductions other than 'none' are taken over
    the kept elements ('mean' divides by their count); paddlenlp's own result
    for that combination is ill-defined.
    """

    def __init__(self, reduction: str = "none") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"RDropLoss reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, p: paddle.Tensor, q: paddle.Tensor,
                pad_mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        if p.shape != q.shape:
            raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
        log_p, log_q = log_softmax(p), log_softmax(q)
        kl_qp = _kl_elementwise(log_q, log_p)  # paddlenlp's p_loss
        kl_pq = _kl_elementwise(log_p, log_q)  # paddlenlp's q_loss
        if pad_mask is None:
            return (_reduce(kl_qp, self.reduction).sum()
                    + _reduce(kl_pq, self.reduction).sum()) / 2
        keep = self._expand_mask(pad_mask, p.shape)
        kl_qp = paddle.where(keep, kl_qp, paddle.zeros_like(kl_qp))
        kl_pq = paddle.where(keep, kl_pq, paddle.zeros_like(kl_pq))
        total = kl_qp.sum() + kl_pq.sum()
        if self.reduction == "mean":
            total = total / keep.astype("float32").sum()
        elif self.reduction == "batchmean":
            total = total / p.shape[0]
        return total / 2

    @staticmethod
    def _expand_mask(pad_mask: paddle.Tensor, shape: list) -> paddle.Tensor:
        mask = pad_mask.astype("bool")
        if len(mask.shape) == len(shape) - 1:
            mask = mask.unsqueeze(-1)
        if len(mask.shape) != len(shape) or mask.shape[-1] != 1 or mask.shape[:-1] != shape[:-1]:
            raise ValueError(
                f"pad_mask of shape {pad_mask.shape} does not match logits {shape}; "
                f"expected {shape[:-1]} or {shape[:-1] + [1]}")
        return paddle.expand(mask, shape)


class RDropCrossEntropy(nn.Layer):
    """The full R-Drop classification objective, Eq. (3); returns ``{'loss', 'ce', 'kl'}``.

    Args:
        alpha: weight of the KL term.  ``alpha == 0`` is plain cross-entropy
            (the baseline); then ``q`` may be ``None`` and no second pass is needed.
        convention: how the terms are scaled.
            'readme':  ``0.5 * (CE(p) + CE(q)) + alpha * KL`` with
                       ``KL = (KLsum(p||q) + KLsum(q||p)) / 2`` summed over batch and
                       classes (the official README snippet, ``RDropLoss('none')``).
            'vit_src': ``CE(p) + CE(q) + alpha * (KLsum(p||q) + KLsum(q||p))``, as the
                       official ViT code (``dropreg/R-Drop/vit_src``).  It is exactly
                       twice the 'readme' loss at the same alpha.
        kl_batch_size: KL sums run over the batch, so their weight grows with the batch
            a forward sees.  With ``kl_batch_size = N`` they are rescaled to N samples
            (``N * mean``), so that splitting a global batch over cards or accumulation
            steps leaves the objective unchanged.  ``None`` (default) sums over the
            batch given, as the official code does for its micro-batch of 32.
        CE is the batch mean.  ``ce`` and ``kl`` in the result are the terms as
        they enter ``loss`` (``loss = ce + alpha * kl``); the baseline reports ``kl = 0``.
    """

    def __init__(self, alpha: float = 0.3, convention: str = "vit_src",
                 kl_batch_size: Optional[int] = None) -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(
                f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.convention = convention
        self.kl_batch_size = kl_batch_size or None
        self.kl = RDropLoss(reduction="none")

    @property
    def needs_two_passes(self) -> bool:
        return self.alpha > 0

    def forward(self, p: paddle.Tensor, q: Optional[paddle.Tensor],
                label: paddle.Tensor) -> dict:
        if not self.needs_two_passes:
            ce = cross_entropy(p, label)
            return {"loss": ce, "ce": ce, "kl": paddle.zeros([], dtype="float32")}
        if q is None:
            raise ValueError("alpha > 0 needs the logits of a second pass (q)")
        scale = 0.5 if self.convention == "readme" else 1.0
        ce = scale * (cross_entropy(p, label) + cross_entropy(q, label))
        kl = (2.0 * scale) * self.kl(p, q)
        if self.kl_batch_size:
            kl = kl * (self.kl_batch_size / p.shape[0])
        return {"loss": ce + self.alpha * kl, "ce": ce, "kl": kl}
