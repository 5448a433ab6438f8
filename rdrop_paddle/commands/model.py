"""The model a config describes, and loading weights into it."""
from __future__ import annotations

import dataclasses
import os

import paddle

from rdrop_paddle.config.schema import Config, ModelConfig
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights, check_fits, load_paddle
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


def in_chans_of(cfg: ModelConfig) -> int:
    """Input channels of model ``cfg.name`` (built without initialising weights)."""
    try:
        with paddle.LazyGuard(), paddle.utils.unique_name.guard():
            return build_model(cfg.name, num_classes=1, image_size=cfg.image_size).in_chans
    except ValueError as e:
        raise UserInputError(f"Model: {e}") from None


def with_classes(cfg: Config, class_names: list[str]) -> Config:
    """``cfg`` with ``Model.num_classes: 0`` replaced by the data's class count."""
    if cfg.Model.num_classes:
        return cfg
    if not class_names:
        raise UserInputError("Model.num_classes is 0 but the data set names no classes; set it")
    return dataclasses.replace(cfg, Model=dataclasses.replace(cfg.Model, num_classes=len(class_names)))


def best_weights(cfg: Config, no_ema: bool = False) -> str:
    """``Model.pretrained``, else the run's best weights: for a run that kept an EMA (unless
    ``no_ema``) those that scored best at its best evaluation, ``best_ema.pdparams`` or
    ``best.pdparams`` (its newest checkpoint records which), else ``best.pdparams``."""
    if cfg.Model.pretrained:
        return cfg.Model.pretrained
    from rdrop_paddle.engine.checkpoint import CheckpointManager, Damaged, manifest

    raw, ema = (os.path.join(cfg.Global.output_dir, f"{name}.pdparams") for name in ("best", "best_ema"))
    if no_ema or not os.path.isfile(ema):
        return raw
    runs = CheckpointManager(cfg.Global.output_dir, 1)
    for step in reversed(runs.steps()):
        try:
            return ema if manifest(runs.path(step))["best_ema"] else raw
        except Damaged:
            continue
    return ema


def load_weights(model: paddle.nn.Layer, path: str) -> None:
    """Load a ``.pdparams`` (read without running code); every missing, unexpected or
    mis-shaped key is named in one error."""
    set_weights(model, load_paddle(path), path)


def set_weights(model: paddle.nn.Layer, state: dict, what: str, notice=print) -> None:
    """``model.set_state_dict(state)`` once every key fits (an error naming ``what`` otherwise);
    weights of another floating-point precision are cast to the model's, with a notice."""
    own = model.state_dict()
    check_fits({k: tuple(getattr(v, "shape", ())) for k, v in state.items()},
               {k: tuple(v.shape) for k, v in own.items()}, what)
    state, message = as_weights(state, {k: _numpy_dtype(v) for k, v in own.items()}, what)
    if message:
        notice(f"notice: {message}")
    model.set_state_dict(state)


def _numpy_dtype(tensor: paddle.Tensor):
    return {paddle.float32: "float32", paddle.float64: "float64", paddle.float16: "float16"}.get(tensor.dtype, "float32")
