"""Checkpoints: atomic files, the last K kept, ``latest``/``best`` names, and resume lookup.

Layout under ``output_dir``::

    checkpoints/step_0000200.pdparams   model weights
    checkpoints/step_0000200.pdopt      training state (optimizer, scheduler, scaler, step, data position)
    latest.pdparams / latest.pdopt      the newest of them (hard links, or copies)
    best.pdparams                       weights with the best eval top-1
"""
from __future__ import annotations

import glob
import os
import shutil

import paddle

from rdrop_paddle.errors import UserInputError


def save_atomic(obj, path: str) -> None:
    """``paddle.save`` to ``path`` so that a crash never leaves a half-written file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        paddle.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _link_atomic(src: str, dst: str) -> None:
    tmp = f"{dst}.tmp-{os.getpid()}"
    try:
        os.link(src, tmp)
    except OSError:  # no hard links on this file system
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_state(path: str) -> dict:
    """Load a ``.pdparams``/``.pdopt`` file; a missing or unreadable file is a user error."""
    if not os.path.isfile(path):
        raise UserInputError(f"checkpoint not found: {path}")
    try:
        state = paddle.load(path)
    except Exception as e:  # paddle raises several types for corrupt files
        raise UserInputError(f"cannot read checkpoint {path}: {e}") from None
    if not isinstance(state, dict):
        raise UserInputError(f"checkpoint {path} does not hold a state dict")
    return state


def load_weights(model: paddle.nn.Layer, path: str) -> None:
    """Load model weights; any missing, unexpected or mis-shaped key is an error naming it."""
    state = load_state(path)
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
                 for k in own if k in state and list(state[k].shape) != list(own[k].shape)]
    if problems:
        raise UserInputError(f"{path} does not fit the model: " + "; ".join(problems[:10])
                             + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    model.set_state_dict(state)


class CheckpointManager:
    """Writes step checkpoints into ``output_dir``, keeping the newest ``keep``."""

    def __init__(self, output_dir: str, keep: int) -> None:
        self.output_dir, self.keep = output_dir, keep
        self.dir = os.path.join(output_dir, "checkpoints")

    def save(self, step: int, weights: dict, train_state: dict) -> None:
        os.makedirs(self.dir, exist_ok=True)
        stem = os.path.join(self.dir, f"step_{step:07d}")
        save_atomic(weights, stem + ".pdparams")
        save_atomic(train_state, stem + ".pdopt")  # written last: it marks a complete pair
        for ext in (".pdparams", ".pdopt"):
            _link_atomic(stem + ext, os.path.join(self.output_dir, "latest" + ext))
        for old in self.steps()[:-self.keep]:
            for ext in (".pdopt", ".pdparams"):
                os.remove(os.path.join(self.dir, f"step_{old:07d}{ext}"))

    def save_best(self, weights: dict) -> None:
        save_atomic(weights, os.path.join(self.output_dir, "best.pdparams"))

    def steps(self) -> list[int]:
        """Steps with a complete (weights + state) checkpoint, oldest first."""
        found = glob.glob(os.path.join(self.dir, "step_*.pdopt"))
        steps = sorted(int(os.path.basename(p)[5:12]) for p in found)
        return [s for s in steps if os.path.isfile(os.path.join(self.dir, f"step_{s:07d}.pdparams"))]

    def resume_path(self, resume: str) -> str | None:
        """The ``.pdopt`` to resume from: ``auto`` = latest here (None if none), else ``resume``."""
        if resume == "auto":
            latest = os.path.join(self.output_dir, "latest.pdopt")
            return latest if os.path.isfile(latest) else None
        if resume:
            path = resume if resume.endswith(".pdopt") else resume + ".pdopt"
            if not os.path.isfile(path):
                raise UserInputError(f"Global.resume: no training state at {path}")
            return path
        if self.steps() or os.path.isfile(os.path.join(self.output_dir, "latest.pdopt")):
            raise UserInputError(
                f"{self.output_dir} already holds checkpoints of a run; continue it with "
                f"-o Global.resume=auto, or choose another Global.output_dir")
        return None
