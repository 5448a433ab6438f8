"""Ranges and cross-field checks of a :class:`~rdrop_paddle.config.Config` that a single
type cannot express; each failure is one :class:`~rdrop_paddle.errors.UserInputError`
naming the key and the value."""
from __future__ import annotations

import math
import os

from rdrop_paddle.config.schema import (MAX_BATCH, MAX_CLASSES, MAX_IMAGE_SIZE, MAX_STEPS, MAX_SEQ_LEN, MAX_STOP_TIMEOUT, MAX_WORKERS,
                                         PATH_KEYS, Config)
from rdrop_paddle.errors import UserInputError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserInputError(message)


def validate(cfg: Config) -> None:
    """Ranges and cross-field checks that a single type cannot express."""
    g, m, lo, o, d = cfg.Global, cfg.Model, cfg.Loss, cfg.Optimizer, cfg.Data
    for name, value in {"Global.max_steps": g.max_steps, "Global.log_every": g.log_every,
                        "Global.eval_every": g.eval_every, "Global.save_every": g.save_every,
                        "Global.keep_checkpoints": g.keep_checkpoints,
                        "Model.image_size": m.image_size, "Data.batch_size": d.batch_size, "Data.eval_batch_size": d.eval_batch_size}.items():
        _check(value > 0, f"{name} must be positive, got {value}")
    for name, value, top in (("Model.num_classes", m.num_classes, MAX_CLASSES),
                             ("Model.image_size", m.image_size, MAX_IMAGE_SIZE),
                             ("Global.max_steps", g.max_steps, MAX_STEPS), ("Global.log_every", g.log_every, MAX_STEPS),
                             ("Global.eval_every", g.eval_every, MAX_STEPS), ("Global.save_every", g.save_every, MAX_STEPS),
                             ("Optimizer.warmup_steps", o.warmup_steps, MAX_STEPS),
                             ("Data.batch_size", d.batch_size, MAX_BATCH), ("Data.eval_batch_size", d.eval_batch_size, MAX_BATCH)):
        _check(value <= top, f"{name} must be at most {top:,}, got {value:,}")
    for name, value in {"Optimizer.accum_steps": o.accum_steps, "Optimizer.warmup_steps": o.warmup_steps,
                        "Data.max_per_card_batch": d.max_per_card_batch, "Data.num_workers": d.num_workers,
                        "Loss.kl_batch_size": lo.kl_batch_size, "Data.split_seed": d.split_seed,
                        "Model.num_classes": m.num_classes}.items():
        _check(value >= 0, f"{name} must be >= 0, got {value}")
    _check(0 <= g.seed < 2 ** 63, f"Global.seed must be in [0, 2**63), got {g.seed}")
    _check(0 <= d.split_seed < 2 ** 32, f"Data.split_seed must be in [0, 2**32), got {d.split_seed}")
    for name, value in {"Model.dropout": m.dropout, "Model.attn_dropout": m.attn_dropout,
                        "Model.proj_dropout": m.proj_dropout, "Model.drop_path": m.drop_path,
                        "Optimizer.momentum": o.momentum, "Model.ema_decay": m.ema_decay,
                        "Loss.label_smoothing": lo.label_smoothing}.items():
        _check(value is None or 0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")
    for name, value in {"Data.hflip": d.hflip, "Data.random_erasing": d.random_erasing,
                        "Data.mix_prob": d.mix_prob, "Data.mix_switch_prob": d.mix_switch_prob}.items():
        _check(0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], got {value}")
    for name, value in {"Data.color_jitter": d.color_jitter, "Data.mixup": d.mixup, "Data.cutmix": d.cutmix}.items():
        _check(math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value}")
    _check(len(d.scale) == 2 and 0.0 < d.scale[0] <= d.scale[1] <= 1.0,
           f"Data.scale must be [min, max] with 0 < min <= max <= 1, got {d.scale}")
    _check(0.0 < d.crop_pct <= 1.0, f"Data.crop_pct must be in (0, 1], got {d.crop_pct}")
    _check(m.image_size / d.crop_pct <= MAX_IMAGE_SIZE,
           f"Data.crop_pct {d.crop_pct:g} resizes {m.image_size} px images to {m.image_size / d.crop_pct:.3g} px "
           f"before the crop, more than {MAX_IMAGE_SIZE}")
    _check(d.num_workers <= MAX_WORKERS, f"Data.num_workers must be at most {MAX_WORKERS}, got {d.num_workers:,}")
    _check(len(o.betas) == 2 and all(0.0 <= b < 1.0 for b in o.betas),
           f"Optimizer.betas must be [beta1, beta2] in [0, 1), got {o.betas}")
    _check(math.isfinite(o.eps) and o.eps > 0, f"Optimizer.eps must be a finite number > 0, got {o.eps}")
    _check(2 <= d.max_seq_len <= MAX_SEQ_LEN, f"Data.max_seq_len must be in [2, {MAX_SEQ_LEN}], got {d.max_seq_len}")
    _check(0.0 < o.layer_decay <= 1.0, f"Optimizer.layer_decay must be in (0, 1], got {o.layer_decay}")
    if d.auto_augment:
        from rdrop_paddle.data.randaugment import parse_policy

        parse_policy(d.auto_augment)  # one line naming what is wrong
    for name, value in {"Loss.alpha": lo.alpha, "Optimizer.weight_decay": o.weight_decay,
                        "Optimizer.grad_clip": o.grad_clip}.items():
        _check(math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value}")
    _check(math.isfinite(o.lr) and o.lr > 0, f"Optimizer.lr must be a finite number > 0, got {o.lr}")
    for name, value in (("Global.stop_timeout", g.stop_timeout), ("Global.setup_timeout", g.setup_timeout)):
        _check(math.isfinite(value) and 0 < value <= MAX_STOP_TIMEOUT,
               f"{name} must be a number of seconds in (0, {MAX_STOP_TIMEOUT:,}], got {value}")
    for section, key in sorted(PATH_KEYS):
        path = getattr(getattr(cfg, section), key)
        _check("\0" not in path, f"{section}.{key} holds a NUL character; not a path")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            raise UserInputError(f"{section}.{key} {path!r:.80} is not valid UTF-8 text; not a path") from None
    _check(0.0 < d.val_fraction < 1.0, f"Data.val_fraction must be in (0, 1), got {d.val_fraction}")
    _check(bool(g.output_dir.strip()), "Global.output_dir must not be empty")
    _check(not os.path.isfile(g.output_dir), f"Global.output_dir {g.output_dir} is a file, not a folder")
