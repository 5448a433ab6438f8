"""PyTorch references that this package did not write: HF transformers' ViT, and the
loss, schedule and accuracy formulas of the official R-Drop code, transcribed verbatim
in PyTorch so that the Paddle side is checked against them.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def hf_vit(hidden=768, layers=12, heads=12, image=224, patch=16, classes=100, seed=0):
    """A random ``ViTForImageClassification`` configured as the R-Drop ViT (eager, eps 1e-6, no dropout)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=4 * hidden, image_size=image, patch_size=patch,
                    num_labels=classes, layer_norm_eps=1e-6, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0, attn_implementation="eager")
    model = ViTForImageClassification(cfg)
    with torch.no_grad():  # HF zero-initialises biases, cls and pos: give every tensor values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def hf_state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def hf_logits(model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(images)).logits.numpy()


def official_compute_kl_loss(p, q, pad_mask=None):
    """The R-Drop README snippet (dropreg/R-Drop); its pad_mask is True = padding."""
    p_loss = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction="none")
    q_loss = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="none")
    if pad_mask is not None:
        p_loss.masked_fill_(pad_mask, 0.0)
        q_loss.masked_fill_(pad_mask, 0.0)
    return (p_loss.sum() + q_loss.sum()) / 2


def official_readme_loss(p, q, y, alpha):
    """README usage: ``0.5 * (CE1 + CE2) + alpha * compute_kl_loss(p, q)``."""
    return 0.5 * (F.cross_entropy(p, y) + F.cross_entropy(q, y)) + alpha * official_compute_kl_loss(p, q)


def official_vit_src_loss(p, q, y, alpha):
    """dropreg/R-Drop vit_src: ``CE1 + CE2 + alpha * (KLsum(p||q) + KLsum(q||p))``, not halved."""
    kl_pq = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="sum")
    kl_qp = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction="sum")
    return F.cross_entropy(p, y) + F.cross_entropy(q, y) + alpha * (kl_pq + kl_qp)


def paddlenlp_rdrop_loss_torch(p, q, reduction):
    """paddlenlp.losses.RDropLoss transcribed to torch (same kl_div reductions)."""
    p_loss = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction=reduction)
    q_loss = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction=reduction)
    return (p_loss.sum() + q_loss.sum()) / 2


class OfficialWarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """vit_src ``WarmupCosineSchedule`` (cycles 0.5): linear warm-up, then cosine to 0."""

    def __init__(self, optimizer, warmup_steps, t_total, cycles=0.5):
        self.warmup_steps, self.t_total, self.cycles = warmup_steps, t_total, cycles
        super().__init__(optimizer, self.lr_lambda)

    def lr_lambda(self, step):
        if step < self.warmup_steps:
            return float(step) / float(max(1.0, self.warmup_steps))
        progress = float(step - self.warmup_steps) / float(max(1, self.t_total - self.warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(self.cycles) * 2.0 * progress)))


def official_topk(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Correct counts with ``torch.topk`` (top-1 equals vit_src's argmax ``simple_accuracy``)."""
    top = torch.topk(logits, max(ks), dim=1).indices
    return [int((top[:, :k] == labels[:, None]).any(dim=1).sum()) for k in ks]
