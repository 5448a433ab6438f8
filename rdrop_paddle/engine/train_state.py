"""What a checkpoint's ``train.pdopt`` must hold before any of it is used.

:func:`check_checkpoint` compares a checkpoint read from disk with the model it is resumed
into: weights (keys, shapes, floating point), progress (integer step, best step and stream
position, a finite best score: top-1 or a correlation in percent), the LR schedule's state, the optimizer state (for every
parameter exactly the entries the optimizer keeps, each of the parameter's shape or a ``[1]``
accumulator, in floating point), and the EMA weights when the run keeps an EMA.  Weights and
EMA must be finite.  A checkpoint that fails is damaged: resume falls back to an older one.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from rdrop_paddle.engine.checkpoint import manifest
from rdrop_paddle.io import as_weights, check_fits

PROGRESS = ("step", "best_top1", "best_step", "position")
_MAX_COUNT = 1 << 62


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value < _MAX_COUNT:
        raise ValueError(f"{what} is {value!r:.40}, not a non-negative integer")
    return value


def _finite(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r:.40}, not a finite number")
    return float(value)


def _progress(progress: Any, step: int) -> None:
    if not isinstance(progress, dict) or not set(PROGRESS) <= set(progress) <= {*PROGRESS, "best_ema"}:
        raise ValueError(f"progress does not hold exactly {', '.join(PROGRESS)} (and best_ema)")
    if type(progress.get("best_ema", False)) is not bool:
        raise ValueError(f"progress.best_ema is {progress['best_ema']!r:.40}, not true or false")
    if _count(progress["step"], "progress.step") != step:
        raise ValueError(f"progress.step {progress['step']} is not the checkpoint's step {step}")
    if _count(progress["best_step"], "progress.best_step") > step:
        raise ValueError(f"progress.best_step {progress['best_step']} is after step {step}")
    _count(progress["position"], "progress.position")
    if not -101.0 <= _finite(progress["best_top1"], "progress.best_top1") <= 100.0:  # top-1, or a correlation
        raise ValueError(f"progress.best_top1 {progress['best_top1']} is outside [-101, 100]")


def _schedule(schedule: Any, what: str) -> None:
    if not isinstance(schedule, dict) or "last_epoch" not in schedule:
        raise ValueError(f"{what} is not an LR schedule state (no last_epoch)")
    if type(schedule["last_epoch"]) is not int or not -1 <= schedule["last_epoch"] < _MAX_COUNT:
        raise ValueError(f"{what}.last_epoch is {schedule['last_epoch']!r:.40}, not an integer")
    if "last_lr" in schedule:
        _finite(schedule["last_lr"], f"{what}.last_lr")


def _optimizer(state: Any, shapes: dict[str, tuple], step: int, entries: frozenset[str] | None) -> None:
    if not isinstance(state, dict):
        raise ValueError("the optimizer state is not a dict")
    names = sorted(shapes, key=len, reverse=True)
    suffixes: dict[str, set[str]] = {name: set() for name in shapes}
    for key, value in state.items():
        if key == "LR_Scheduler":
            _schedule(value, "optimizer.LR_Scheduler")
            continue
        if key == "master_weights":
            if not isinstance(value, dict):
                raise ValueError("optimizer.master_weights is not a dict")
            check_fits({k: getattr(v, "shape", ()) for k, v in value.items()}, shapes, "optimizer.master_weights")
            as_weights(value, dict.fromkeys(value, np.float32), "optimizer.master_weights")
            continue
        name = next((n for n in names if isinstance(key, str) and key.startswith(n + "_")), None)
        if name is None:
            raise ValueError(f"optimizer entry {key!r:.80} belongs to no parameter of the model")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" \
                or value.shape not in (tuple(shapes[name]), (1,)):
            what = f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"optimizer entry {key} is {what}, not a float array of shape "
                             f"{list(shapes[name])} or [1]")
        suffixes[name].add(key[len(name):])
    if step > 0 and entries is not None:
        odd = next((n for n, v in suffixes.items() if v != entries), None)
        if odd is not None:
            raise ValueError(f"the optimizer state of {odd} holds {sorted(suffixes[odd])}, not the optimizer's "
                             f"{sorted(entries)}")
    kinds = {frozenset(v) for v in suffixes.values()}
    if step > 0 and (len(kinds) != 1 or not next(iter(kinds))):
        first = next(iter(shapes))
        odd = next(n for n, v in suffixes.items() if v != suffixes[first])
        raise ValueError(f"the optimizer state lacks entries: {first} has {sorted(suffixes[first])}, "
                         f"{odd} has {sorted(suffixes[odd])}")


def _weights(weights: Any, shapes: dict[str, tuple], what: str) -> None:
    if not isinstance(weights, dict):
        raise ValueError(f"{what} is not a state dict")
    check_fits({k: tuple(getattr(v, "shape", ())) for k, v in weights.items()}, shapes, what)
    as_weights(weights, dict.fromkeys(weights, np.float32), what)
    bad = next((k for k, v in weights.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise ValueError(f"{what}: {bad} holds NaN or infinity")


def check_checkpoint(path: str, weights: dict, state: dict, shapes: dict[str, tuple],
                     entries: Callable[[dict], frozenset[str]] | None = None) -> None:
    """Raise ``ValueError`` naming the first thing in checkpoint ``path`` that a resume into a
    model of parameter ``shapes`` could not use.  The checkpoint is held to the config it
    records: an EMA file if that config kept one, and per parameter the entries
    ``entries(its Optimizer section)`` names (:func:`~rdrop_paddle.engine.optim.accumulator_suffixes`).
    A checkpoint of another config is not damaged: resume refuses it afterwards, keeping it."""
    _weights(weights, shapes, "model.pdparams")
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "progress", "config"} <= set(state):
        raise ValueError("train.pdopt does not hold optimizer, scheduler, progress and config")
    config = state["config"]
    if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in ("Model", "Optimizer")) \
            or not (state.get("scaler") is None or isinstance(state["scaler"], dict)):
        raise ValueError("train.pdopt's config or scaler state is not a dict")
    step = manifest(path)["step"]  # verified before: the folder may have been renamed
    _progress(state["progress"], step)
    _schedule(state["scheduler"], "scheduler")
    _optimizer(state["optimizer"], shapes, step, entries(config["Optimizer"]) if entries else None)
    kept_ema = config["Model"].get("ema_decay", 0)
    if isinstance(kept_ema, (int, float)) and kept_ema > 0 and "ema" not in state:
        raise ValueError(f"it has no model_ema.pdparams, though its run kept an EMA (Model.ema_decay {kept_ema})")
    if "ema" in state:
        _weights(state["ema"], shapes, "model_ema.pdparams")
