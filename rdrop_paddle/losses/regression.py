"""R-Drop for regression (STS-B): the consistency term is the squared difference of the
two passes' predictions instead of the bidirectional KL (Liang et al., 2021, Sec. 4.2 GLUE;
the official ``bert_kl`` in ``dropreg/R-Drop huggingface_transformer_src/.../modeling_bert.py``):

    L = MSE(p, y) + MSE(q, y) + alpha * MSE(p, q)        (official: alpha 1.0)

with ``p``, ``q`` the ``[B, 1]`` (or ``[B]``) outputs of two dropout passes and MSE the mean
over the batch, as ``torch.nn.MSELoss()``.  Both passes get the full gradient of the
consistency term, as in the official code.
"""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn as nn

from rdrop_paddle.losses.rdrop import CONVENTIONS


def mse(prediction: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
    """Mean squared error in float32, both flattened (``MSELoss()(p.view(-1), y.view(-1))``)."""
    return paddle.square(prediction.astype("float32").reshape([-1]) - target.astype("float32").reshape([-1])).mean()


class RDropMSE(nn.Layer):
    """The R-Drop regression objective; returns ``{'loss', 'ce', 'kl'}`` like
    :class:`~rdrop_paddle.losses.RDropCrossEntropy` (``ce``: the task term, ``kl``: the
    consistency term as it enters ``loss = ce + alpha * kl``), so a training loop takes either.

    Args:
        alpha: weight of ``MSE(p, q)``; 0 is plain MSE of one pass (the baseline).
        convention: 'vit_src' (default, the official code's sums): ``MSE(p,y) + MSE(q,y) +
            alpha * MSE(p,q)``; 'readme': half of it, as for :class:`RDropCrossEntropy`.
    """

    def __init__(self, alpha: float = 1.0, convention: str = "vit_src") -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        if not alpha >= 0 or alpha == float("inf"):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        self.alpha, self.convention = float(alpha), convention

    @property
    def needs_two_passes(self) -> bool:
        return self.alpha > 0

    def forward(self, p: paddle.Tensor, q: Optional[paddle.Tensor], label: paddle.Tensor,
                pad_mask: Optional[paddle.Tensor] = None) -> dict:
        if pad_mask is not None:
            raise ValueError("RDropMSE takes one prediction per sample: no pad_mask")
        if not self.needs_two_passes:
            value = mse(p, label)
            return {"loss": value, "ce": value, "kl": paddle.zeros([], dtype="float32")}
        if q is None:
            raise ValueError("alpha > 0 needs the predictions of a second pass (q)")
        scale = 0.5 if self.convention == "readme" else 1.0
        task, consistency = scale * (mse(p, label) + mse(q, label)), scale * mse(p, q)
        return {"loss": task + self.alpha * consistency, "ce": task, "kl": consistency}
