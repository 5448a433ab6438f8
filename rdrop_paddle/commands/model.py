"""Which weights a command uses, and loading them into a model."""
from __future__ import annotations

import dataclasses
import os

import paddle

from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights, check_fits, load_paddle


def with_classes(cfg: Config, class_names: list[str]) -> Config:
    """``cfg`` with ``Model.num_classes: 0`` replaced by the data's class count."""
    if cfg.Model.num_classes:
        return cfg
    if not class_names:
        raise UserInputError("Model.num_classes is 0 but the data set names no classes; set it")
    return dataclasses.replace(cfg, Model=dataclasses.replace(cfg.Model, num_classes=len(class_names)))


def prefer_the_run(cfg: Config, notice=print) -> Config:
    """``cfg`` for evaluation and export: when ``Global.output_dir`` holds a trained run
    (``best.pdparams``) and ``Model.pretrained`` is also given — the command line the run was
    trained with — the run's weights are used, not the ones it started from, with a notice
    naming both (``Model.pretrained`` is cleared)."""
    best = os.path.join(cfg.Global.output_dir, "best.pdparams")
    if not cfg.Model.pretrained or not os.path.isfile(best):
        return cfg
    run = os.path.realpath(cfg.Global.output_dir)
    if os.path.commonpath([os.path.realpath(cfg.Model.pretrained), run]) == run:
        return cfg  # weights of the run itself (a checkpoint, best_ema.pdparams): as asked
    notice(f"notice: Global.output_dir {cfg.Global.output_dir} holds a trained run: using its best weights "
           f"({best}), not Model.pretrained {cfg.Model.pretrained}, which the run started from (to use "
           f"{cfg.Model.pretrained} itself, point Global.output_dir elsewhere)")
    return dataclasses.replace(cfg, Model=dataclasses.replace(cfg.Model, pretrained=""))


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
    """Load a ``.pdparams`` (read without running code), or a converted text folder's
    ``model.pdparams`` (its head only if it has the model's class count); every missing,
    unexpected or mis-shaped key is named in one error."""
    if os.path.isdir(path):
        from rdrop_paddle.models.pretrained import load_text_weights

        load_text_weights(model, os.path.join(path, "model.pdparams"))
        return
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
