"""Optimizer and learning-rate schedule of the recipe (official ``vit_src`` defaults).

The official loop calls ``scheduler.step()`` before ``optimizer.step()``
(``vit_src/train.py``), so its k-th update (k = 1, 2, ...) uses ``lr * lambda(k)``: the
first warm-up step is already non-zero and the last one is zero.  :class:`TrainStep
<rdrop_paddle.engine.step.TrainStep>` steps the schedule first in the same way.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import paddle

from rdrop_paddle.config.schema import OptimizerConfig


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: linear warm-up from 0, then half a cosine to 0 at ``total_steps``.

    The formula of the official ``WarmupCosineSchedule(cycles=0.5)``.
    """
    if step < warmup_steps:
        return step / max(1.0, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def warmup_polynomial(step: int, warmup_steps: int, total_steps: int, lr: float, lr_end: float = 1e-7,
                      power: float = 1.0) -> float:
    """LR multiplier: linear warm-up from 0, then polynomial decay to ``lr_end`` at ``total_steps``:
    transformers' ``get_polynomial_decay_schedule_with_warmup`` (defaults ``lr_end=1e-7``,
    ``power=1``), which the official ``bert_rdrop/run.sh`` selects (``--lr_scheduler_type polynomial``)."""
    if step < warmup_steps:
        return step / max(1.0, warmup_steps)
    if step > total_steps or lr <= lr_end:
        return lr_end / lr
    remaining = 1 - (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return ((lr - lr_end) * remaining ** power + lr_end) / lr


def build_scheduler(cfg: OptimizerConfig, max_steps: int) -> paddle.optimizer.lr.LRScheduler:
    if cfg.schedule == "constant":
        return paddle.optimizer.lr.LambdaDecay(cfg.lr, lambda step: 1.0)
    if cfg.schedule == "polynomial":
        return paddle.optimizer.lr.LambdaDecay(
            cfg.lr, lambda step: warmup_polynomial(step, cfg.warmup_steps, max_steps, cfg.lr))
    return paddle.optimizer.lr.LambdaDecay(
        cfg.lr, lambda step: warmup_cosine(step, cfg.warmup_steps, max_steps))


def no_weight_decay(name: str, param) -> bool:
    """Biases, norm weights (all 1-D), ``pos_embed`` and ``cls_token`` are not decayed (timm, DeiT)."""
    return len(param.shape) <= 1 or name.split(".")[-1] in ("pos_embed", "cls_token")


def build_optimizer(cfg: OptimizerConfig, model: paddle.nn.Layer, scheduler) -> paddle.optimizer.Optimizer:
    """SGD with momentum (``v = m*v + g; p -= lr*v``, as torch) or AdamW; global-norm clip.

    Weight decay applies to weight matrices only (:func:`no_weight_decay`).  With
    ``layer_decay < 1`` each layer's lr is scaled (:mod:`~rdrop_paddle.engine.layer_decay`)
    through parameter groups, which Paddle supports on CPU and GPU alike (AdamW's
    ``lr_ratio`` is GPU-only).
    """
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.grad_clip) if cfg.grad_clip > 0 else None
    named = list(model.named_parameters())
    decayed = {p.name for n, p in named if not no_weight_decay(n, p)}
    params = [p for _, p in named]
    if cfg.layer_decay < 1.0:
        from rdrop_paddle.engine.layer_decay import param_groups

        wd = cfg.weight_decay if cfg.name == "adamw" else paddle.regularizer.L2Decay(cfg.weight_decay)
        params = param_groups(model, cfg.layer_decay, decayed, wd if cfg.weight_decay else 0.0)
    if cfg.name == "adamw":
        return paddle.optimizer.AdamW(learning_rate=scheduler, parameters=params, beta1=cfg.betas[0],
                                      beta2=cfg.betas[1], epsilon=cfg.eps, weight_decay=cfg.weight_decay, grad_clip=clip,
                                      apply_decay_param_fun=lambda name: name in decayed)
    groups = params
    if cfg.weight_decay and cfg.layer_decay >= 1.0:
        groups = [{"params": [p for p in params if p.name in decayed],
                   "weight_decay": paddle.regularizer.L2Decay(cfg.weight_decay)},
                  {"params": [p for p in params if p.name not in decayed], "weight_decay": 0.0}]
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=cfg.momentum,
                                     parameters=groups, grad_clip=clip)


def _renamer(model: paddle.nn.Layer, to_structured: bool):
    """Rename optimizer-state keys between Paddle's generated parameter names
    (``linear_3.w_0_velocity_0``) and the model's structured names (``blocks.0.attn.qkv.weight``)."""
    pairs = [(p.name, n) for n, p in model.named_parameters()]
    table = sorted(pairs if to_structured else [(n, g) for g, n in pairs], key=lambda kv: -len(kv[0]))

    def rename(key: str) -> str:
        for old, new in table:
            if key == old or key.startswith(old + "_"):
                return new + key[len(old):]
        raise KeyError(key)
    return rename


def optimizer_state(optimizer, model: paddle.nn.Layer) -> dict:
    """``optimizer.state_dict()`` keyed by structured parameter names: it then loads into a
    model built in another process, whatever names Paddle generated there."""
    rename, state = _renamer(model, True), optimizer.state_dict()
    out = {}
    for key, value in state.items():
        if key == "master_weights":
            value = {rename(k): v for k, v in value.items()}
        out[key if key in ("LR_Scheduler", "master_weights") else rename(key)] = value
    return out


def load_optimizer_state(optimizer, model: paddle.nn.Layer, state: dict) -> None:
    """The inverse of :func:`optimizer_state`; a key naming no parameter of ``model`` is an error."""
    rename, out = _renamer(model, False), {}
    try:
        for key, value in state.items():
            if key == "master_weights":
                value = {rename(k): v for k, v in value.items()}
            out[key if key in ("LR_Scheduler", "master_weights") else rename(key)] = value
    except KeyError as e:
        raise ValueError(f"optimizer state entry {e.args[0]!r} belongs to no parameter of the model")
    optimizer.set_state_dict(out)


def accumulator_suffixes(cfg: OptimizerConfig) -> frozenset[str]:
    """The entries this optimizer keeps per parameter (``_velocity_0``; ``_moment1_0``,
    ``_moment2_0``, ...), as the installed Paddle names them: read off one step of the same
    optimizer on a 2 x 2 layer, so that a checkpoint can be checked against them before Paddle
    sees it."""
    with paddle.utils.unique_name.guard():  # names of its own: the run's accumulators keep theirs
        constant = paddle.ParamAttr(initializer=paddle.nn.initializer.Constant(0.5))  # draws nothing from the RNG
        probe = paddle.nn.Linear(2, 2, weight_attr=constant, bias_attr=False)
        plain = dataclasses.replace(cfg, layer_decay=1.0)  # the same entries, without the ViT's layer ids
        optimizer = build_optimizer(plain, probe, paddle.optimizer.lr.LambdaDecay(cfg.lr, lambda step: 1.0))
        probe(paddle.ones([1, 2])).sum().backward()
        optimizer.step()
        return frozenset(key[len("weight"):] for key in optimizer_state(optimizer, probe)
                         if key.startswith("weight_"))


def recorded_accumulators(cfg: OptimizerConfig) -> Callable[[dict], frozenset[str] | None]:
    """For a checkpoint's recorded ``Optimizer`` section: :func:`accumulator_suffixes` if it is
    the optimizer ``cfg`` names (None otherwise: another optimizer is refused by the config
    comparison, not treated as damage)."""
    def entries(saved: dict) -> frozenset[str] | None:
        return accumulator_suffixes(cfg) if saved.get("name") == cfg.name else None
    return entries
