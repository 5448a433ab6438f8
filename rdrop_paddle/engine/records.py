"""What the training log records beyond the step lines: the first line's notes on the
fine-tuning options, and each evaluation (raw and EMA weights, the best so far)."""
from __future__ import annotations

import math

from rdrop_paddle.config.schema import Config
from rdrop_paddle.data.entries import named
from rdrop_paddle.errors import TrainingDiverged


def record_eval(metrics: dict, step: int, progress, log, writer, keys: tuple = ("top1", "top5"),
                outputs: str = "logits") -> bool:
    """Log an evaluation and update ``progress.best_top1`` (the best ``keys[0]``: top-1, or a
    regression's Pearson) / ``best_step`` / ``best_ema``; True if it is a new best (with an EMA:
    the better of the raw and the averaged weights).  A non-finite one stops the run."""
    main = keys[0]
    if not all(math.isfinite(metrics[k]) for k in (*keys, "loss")):
        raise TrainingDiverged(f"evaluation at step {step} gives non-finite {outputs} (loss "
                               f"{metrics['loss']}); nothing was saved")
    ema_better = bool(metrics.get(f"ema_{main}", -math.inf) >= metrics[main])  # with an EMA, the better of the two
    score = float(metrics[f"ema_{main}"] if ema_better else metrics[main])
    new_best = score > progress.best_top1
    if new_best:
        progress.best_top1, progress.best_step, progress.best_ema = score, step, ema_better
    shown = ("f1", "mcc", *(f"ema_{k}" for k in keys))
    extra = "".join(f"{k}: {metrics[k]:.2f}, " for k in shown if k in metrics)
    log.info(f"[Eval][step {step}] {keys[0]}: {metrics[keys[0]]:.2f}, {keys[1]}: {metrics[keys[1]]:.2f}, "
             f"val_loss: {metrics['loss']:.5f}, {extra}best_{main}: {progress.best_top1:.2f}")
    writer.add({f"eval/{k}": metrics[k] for k in (*keys, "loss", "f1", "mcc", *(f"ema_{k}" for k in (*keys, "loss")))
                if k in metrics}, step)
    return new_best


def recipe_notes(cfg: Config, train_set) -> str:
    """What the first log line adds about the fine-tuning options that are on."""
    d, notes = cfg.Data, []
    if cfg.Optimizer.layer_decay < 1.0:
        notes.append(f"layer_decay {cfg.Optimizer.layer_decay} (lr x decay^(L - layer), L = "
                     f"{cfg.Model.name} blocks + 1)")
    if cfg.Model.ema_decay:
        warmup = "with warm-up, " if cfg.Model.ema_warmup else ""
        notes.append(f"EMA decay {cfg.Model.ema_decay} ({warmup}best of the raw and EMA weights)")
    if d.mixup or d.cutmix:
        notes.append(f"mixup {d.mixup}, cutmix {d.cutmix}, mix_prob {d.mix_prob}")
    if cfg.Loss.label_smoothing:
        notes.append(f"label_smoothing {cfg.Loss.label_smoothing}")
    lines = getattr(train_set, "skipped_lines", [])
    if lines:
        notes.append(f"{len(lines)} bad training line(s) skipped (Data.skip_bad_lines), e.g. {lines[0]}")
    skipped = getattr(train_set, "skipped_files", [])
    if skipped:
        notes.append(f"{len(skipped)} hidden or non-image entr{'y' if len(skipped) == 1 else 'ies'} "
                     f"skipped ({named(skipped)})")
    return "".join(f"; {n}" for n in notes)
