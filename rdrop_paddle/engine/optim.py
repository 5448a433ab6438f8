"""Optimizer and learning-rate schedule of the recipe (official ``vit_src`` defaults)."""
from __future__ import annotations

import math

import paddle

from rdrop_paddle.config import OptimizerConfig


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: linear warm-up from 0, then half a cosine to 0 at ``total_steps``.

    Identical to ``WarmupCosineSchedule(cycles=0.5)`` of the official code.
    """
    if step < warmup_steps:
        return step / max(1.0, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_scheduler(cfg: OptimizerConfig, max_steps: int) -> paddle.optimizer.lr.LRScheduler:
    if cfg.schedule == "constant":
        return paddle.optimizer.lr.LambdaDecay(cfg.lr, lambda step: 1.0)
    return paddle.optimizer.lr.LambdaDecay(
        cfg.lr, lambda step: warmup_cosine(step, cfg.warmup_steps, max_steps))


def build_optimizer(cfg: OptimizerConfig, parameters, scheduler) -> paddle.optimizer.Optimizer:
    """SGD with momentum (``v = m*v + g; p -= lr*v``, as torch) or AdamW; global-norm clip."""
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.grad_clip) if cfg.grad_clip > 0 else None
    if cfg.name == "adamw":
        return paddle.optimizer.AdamW(learning_rate=scheduler, parameters=parameters,
                                      weight_decay=cfg.weight_decay, grad_clip=clip)
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=cfg.momentum,
                                     parameters=parameters, weight_decay=cfg.weight_decay or None,
                                     grad_clip=clip)
