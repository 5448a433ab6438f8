"""Train/inference consistency, the paper's argument for R-Drop (Liang et al., 2021, Sec. 2-3).

Dropout makes training a sum over sub-models while inference uses the full model;
R-Drop's KL term (Eq. 2) pulls the sub-models' predictions together.  Measured on
held-out data: the symmetric KL between two dropout passes, and how far the accuracy of
single dropout passes (averaged over ``passes``) is from the dropout-off accuracy.
"""
from __future__ import annotations

import paddle

from rdrop_paddle.losses import RDropLoss


@paddle.no_grad()
def dropout_consistency(model: paddle.nn.Layer, loader, passes: int = 8, seed: int = 0) -> dict:
    """``{'kl', 'top1_dropout', 'top1_eval', 'gap'}`` over ``loader`` (kl per sample, Eq. 2)."""
    was_training = model.training
    kl_loss = RDropLoss("sum")
    paddle.seed(seed)
    kl_sum, hits_on, hits_off, count = 0.0, 0.0, 0.0, 0
    for images, labels in loader:
        y = labels.numpy().reshape(-1)
        model.eval()
        hits_off += float((model(images).numpy().argmax(1) == y).sum())
        model.train()
        outs = [model(images) for _ in range(passes)]
        hits_on += sum(float((o.numpy().argmax(1) == y).sum()) for o in outs) / passes
        kl_sum += sum(float(kl_loss(outs[i], outs[i + 1])) for i in range(0, passes - 1, 2)) / (passes // 2)
        count += len(y)
    if not was_training:
        model.eval()
    top1_on, top1_off = 100.0 * hits_on / count, 100.0 * hits_off / count
    return {"kl": kl_sum / count, "top1_dropout": top1_on, "top1_eval": top1_off,
            "gap": top1_on - top1_off}
