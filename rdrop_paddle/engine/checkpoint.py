"""Atomic checkpoint files: written to a temporary name, then renamed into place."""
from __future__ import annotations

import os

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
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
              for k in own if k in state and list(state[k].shape) != list(own[k].shape)]
    problems = ([f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected]
                + shapes)
    if problems:
        raise UserInputError(f"{path} does not fit the model: " + "; ".join(problems[:10])
                             + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    model.set_state_dict(state)
