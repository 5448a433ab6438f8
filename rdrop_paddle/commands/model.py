"""The model a config describes, and loading weights into it."""
from __future__ import annotations

import paddle

from rdrop_paddle.config import ModelConfig
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import check_fits, load_paddle
from rdrop_paddle.models import VisionTransformer, build_model


def model_from_config(cfg: ModelConfig) -> VisionTransformer:
    """``build_model(cfg.name, ...)``; a value the model rejects is a config error.

    Built under a fresh name scope, so parameter names do not depend on what else the
    process created before.
    """
    try:
        with paddle.utils.unique_name.guard():
            return build_model(cfg.name, **cfg.kwargs())
    except ValueError as e:
        raise UserInputError(f"Model: {e}") from None


def load_weights(model: paddle.nn.Layer, path: str) -> None:
    """Load a ``.pdparams`` (read without running code); every missing, unexpected or
    mis-shaped key is named in one error."""
    set_weights(model, load_paddle(path), path)


def set_weights(model: paddle.nn.Layer, state: dict, what: str) -> None:
    """``model.set_state_dict(state)`` once every key fits (an error naming ``what`` otherwise)."""
    check_fits({k: tuple(getattr(v, "shape", ())) for k, v in state.items()},
               {k: tuple(v.shape) for k, v in model.state_dict().items()}, what)
    model.set_state_dict(state)
