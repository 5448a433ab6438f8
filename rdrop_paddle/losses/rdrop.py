"""R-Drop losses (Liang et al., NeurIPS 2021, arXiv:2106.14448).

Two dropout passes over the same batch give logits ``p`` and ``q``.  The paper's
per-sample objective is

    Eq. (1)  L_NLL = -log P1(y|x) - log P2(y|x)
    Eq. (2)  L_KL  = 1/2 * (KL(P1 || P2) + KL(P2 || P1))
    Eq. (3)  L     = L_NLL + alpha * L_KL

Log-probabilities are ``z - logsumexp(z)`` in float32: stable for large logits and under
fp16/bf16 autocast.  (Paddle's CPU ``log_softmax`` and ``cross_entropy`` clip
log-probabilities at -64, which the PyTorch reference does not.)  Logits are ``[..., C]``:
``[B, C]`` for classification, ``[B, T, C]`` for sequence labelling.
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


def is_soft(label: paddle.Tensor, logits: paddle.Tensor) -> bool:
    """Whether ``label`` holds ``[..., C]`` probabilities (Mixup/CutMix targets) rather than ids."""
    return len(label.shape) == len(logits.shape) and label.dtype in (paddle.float32, paddle.float64,
                                                                     paddle.float16, paddle.bfloat16)


def cross_entropy(logits: paddle.Tensor, label: paddle.Tensor, reduction: str = "mean",
                  ignore_index: int = -100, keep: Optional[paddle.Tensor] = None,
                  label_smoothing: float = 0.0) -> paddle.Tensor:
    """Cross-entropy of ``[..., C]`` logits against integer labels ``[...]`` or probability
    targets ``[..., C]``, 'mean' or 'sum'.

    With ``label_smoothing`` eps the target is ``(1 - eps) * y + eps / C`` (Szegedy et al.,
    2016; ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` and timm's smoothed
    Mixup targets).  Positions whose label is ``ignore_index``, or where ``keep`` (label
    shape without the class axis, True = counted) is False, contribute nothing; 'mean'
    divides by the positions counted, as ``paddle.nn.functional.cross_entropy`` does.
    """
    classes = logits.shape[-1]
    logp = log_softmax(logits).reshape([-1, classes])
    if is_soft(label, logits):
        target = label.reshape([-1, classes]).astype("float32")
        valid = paddle.ones([target.shape[0]], dtype="bool")
        per_position = -(target * logp).sum(axis=-1)
    else:
        label = label.reshape([-1]).astype("int64")
        valid = label != ignore_index
        safe = paddle.where(valid, label, paddle.zeros_like(label))
        per_position = -paddle.take_along_axis(logp, safe.unsqueeze(-1), axis=-1).squeeze(-1)
    if label_smoothing:  # (1 - eps) * CE(y) + eps * CE(uniform), for ids and probabilities alike
        per_position = (1.0 - label_smoothing) * per_position - label_smoothing * logp.mean(axis=-1)
    if keep is not None:
        valid = paddle.logical_and(valid, keep.reshape([-1]).astype("bool"))
    nll = (per_position * valid.astype("float32")).sum()
    if reduction == "sum":
        return nll
    return nll / paddle.clip(valid.astype("float32").sum(), min=1.0)


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


def expand_mask(pad_mask: paddle.Tensor, shape: list) -> paddle.Tensor:
    """A keep-mask for ``[..., C]`` logits of ``shape``, broadcast to that shape.

    Accepted: the full shape (``[B, T, C]``, paddlenlp's tiled mask), anything that
    broadcasts to it (``[B, T, 1]``, ``[B, 1]``), or the shape without the class axis
    (``[B, T]``, or ``[B]`` for ``[B, C]`` logits).
    """
    mask = pad_mask.astype("bool")
    if len(mask.shape) == len(shape) - 1:
        mask = mask.unsqueeze(-1)
    if len(mask.shape) != len(shape) or any(m not in (1, s) for m, s in zip(mask.shape, shape)):
        raise ValueError(f"pad_mask of shape {list(pad_mask.shape)} does not broadcast to logits "
                         f"of shape {list(shape)}; expected {list(shape)}, {list(shape[:-1]) + [1]} "
                         f"or {list(shape[:-1])}")
    return paddle.expand(mask, shape)


class RDropLoss(nn.Layer):
    """Bidirectional KL between two passes, Eq. (2); drop-in for ``paddlenlp.losses.RDropLoss``.

    ``forward(p, q, pad_mask)`` returns ``(sum(reduce(KL(q||p))) + sum(reduce(KL(p||q)))) / 2``
    with ``reduce`` one of 'none' (element-wise), 'sum', 'mean' (over all elements) or
    'batchmean' (sum / batch size), as paddlenlp does.

    Args:
        reduction: 'none' | 'sum' | 'mean' | 'batchmean'.
        detach_target: the gradient.  ``False`` (default): the full gradient of both KL
            terms, as the official PyTorch code, where ``kl_div`` differentiates its target.
            ``True``: the target distributions (``softmax(q)`` in KL(q||p) and ``softmax(p)``
            in KL(p||q)) are constants, as in paddlenlp, whose ``F.kl_div`` gives its label no
            gradient; values are the same, gradients are not.

    ``pad_mask`` follows paddlenlp: **True marks a position that is kept**; any shape of
    :func:`expand_mask`.  The official PyTorch snippet uses the opposite meaning (True =
    padding, zeroed with ``masked_fill``); pass ``~mask`` when porting it.  With a mask every
    reduction is taken over the kept elements ('mean' divides by their count, 'batchmean'
    by the batch size).  paddlenlp agrees for 'none'; for the others it applies the mask
    after reducing, which adds the unmasked reduced loss once per kept element.
    """

    def __init__(self, reduction: str = "none", detach_target: bool = False) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"RDropLoss reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction, self.detach_target = reduction, detach_target

    def forward(self, p: paddle.Tensor, q: paddle.Tensor,
                pad_mask: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        if p.shape != q.shape:
            raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
        log_p, log_q = log_softmax(p), log_softmax(q)
        target_p, target_q = (log_p.detach(), log_q.detach()) if self.detach_target else (log_p, log_q)
        kl_qp = _kl_elementwise(target_q, log_p)  # paddlenlp's p_loss
        kl_pq = _kl_elementwise(target_p, log_q)  # paddlenlp's q_loss
        if pad_mask is None:
            return (_reduce(kl_qp, self.reduction).sum() + _reduce(kl_pq, self.reduction).sum()) / 2
        keep = expand_mask(pad_mask, p.shape)
        zero = paddle.zeros_like(kl_qp)
        total = paddle.where(keep, kl_qp, zero).sum() + paddle.where(keep, kl_pq, zero).sum()
        if self.reduction == "mean":
            total = total / paddle.clip(keep.astype("float32").sum(), min=1.0)
        elif self.reduction == "batchmean":
            total = total / p.shape[0]
        return total / 2


class RDropCrossEntropy(nn.Layer):
    """The full R-Drop classification objective, Eq. (3); returns ``{'loss', 'ce', 'kl'}``.

    Args:
        alpha: weight of the KL term.  ``alpha == 0`` is plain cross-entropy of one pass
            (the baseline): ``q`` may be ``None`` and no second pass is needed.
        convention: how the terms are scaled.
            'readme':  ``0.5 * (CE(p) + CE(q)) + alpha * KL`` with
                       ``KL = (KLsum(p||q) + KLsum(q||p)) / 2`` summed over batch and
                       classes (the official README snippet, ``RDropLoss('none')``).
            'vit_src': ``CE(p) + CE(q) + alpha * (KLsum(p||q) + KLsum(q||p))``, as the
                       official ViT code (``dropreg/R-Drop/vit_src``).  It is exactly twice
                       the 'readme' loss at the same alpha; note that its ``alpha == 0``
                       baseline is CE of one pass, while any ``alpha > 0`` has CE1 + CE2
                       (twice the CE gradient).
        kl_batch_size: KL sums run over the batch, so their weight grows with the batch a
            forward sees.  With ``kl_batch_size = N`` they are rescaled to N samples
            (``N * mean``), so splitting a global batch over cards or accumulation steps
            leaves the objective unchanged.  ``None``: sum over the batch given.
        ignore_index: label that adds nothing to CE (``paddle.nn.functional.cross_entropy``).
        detach_target: the KL gradient, as :class:`RDropLoss`.  ``False`` (default) is the
            official code's full gradient, which the CIFAR-100 result was trained with.
        label_smoothing: eps of the CE targets ``(1 - eps) * y + eps / C`` (the official
            translation scripts combine R-Drop with it); the KL term is unchanged.

    ``forward(p, q, label, pad_mask=None)``: ``label`` is ``[B]`` for ``[B, C]`` logits or
    ``[B, T]`` for ``[B, T, C]``, or float probabilities of the logits' shape (Mixup/CutMix
    targets: both passes see the same mixed input, CE takes the soft targets); ``pad_mask`` (True = kept, e.g. an attention mask) removes
    positions from both CE and KL.  CE is the mean over counted positions; ``ce`` and ``kl``
    in the result are the terms as they enter ``loss = ce + alpha * kl``.
    """

    def __init__(self, alpha: float = 0.3, convention: str = "vit_src",
                 kl_batch_size: Optional[int] = None, ignore_index: int = -100,
                 detach_target: bool = False, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(
                f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        if not alpha >= 0 or alpha == float("inf"):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        self.alpha, self.convention = float(alpha), convention
        self.kl_batch_size, self.ignore_index = kl_batch_size or None, ignore_index
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.kl = RDropLoss(reduction="none", detach_target=detach_target)

    @property
    def needs_two_passes(self) -> bool:
        return self.alpha > 0

    def _keep_positions(self, pad_mask, logits) -> Optional[paddle.Tensor]:
        """The mask over positions (label shape) that CE uses."""
        if pad_mask is None:
            return None
        return expand_mask(pad_mask, logits.shape).any(axis=-1)

    def forward(self, p: paddle.Tensor, q: Optional[paddle.Tensor], label: paddle.Tensor,
                pad_mask: Optional[paddle.Tensor] = None) -> dict:
        keep = self._keep_positions(pad_mask, p)

        def ce(logits):
            return cross_entropy(logits, label, ignore_index=self.ignore_index, keep=keep,
                                 label_smoothing=self.label_smoothing)

        if not self.needs_two_passes:
            value = ce(p)
            return {"loss": value, "ce": value, "kl": paddle.zeros([], dtype="float32")}
        if q is None:
            raise ValueError("alpha > 0 needs the logits of a second pass (q)")
        scale = 0.5 if self.convention == "readme" else 1.0
        ce_term = scale * (ce(p) + ce(q))
        kl = (2.0 * scale) * self.kl(p, q, pad_mask)
        if self.kl_batch_size:
            kl = kl * (self.kl_batch_size / p.shape[0])
        return {"loss": ce_term + self.alpha * kl, "ce": ce_term, "kl": kl}
