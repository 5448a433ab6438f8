"""The model a config describes, and loading weights into it."""
from __future__ import annotations

import dataclasses
import os

import paddle

from rdrop_paddle.config.schema import Config, ModelConfig
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights, check_fits, load_paddle
from rdrop_paddle.io.tokenizer_files import TOKENIZER_FILES
from rdrop_paddle.models import build_model

TEXT_MODELS = ("bert", "ernie")  # Model.name of a text classifier; its config.json says the size
TEXT_FILES = ("config.json", *TOKENIZER_FILES)  # a run keeps them beside its weights


def is_text(cfg: ModelConfig) -> bool:
    return cfg.name in TEXT_MODELS


def text_dir(cfg: Config) -> str:
    """Where a text model's ``config.json`` and ``vocab.txt`` are: the converted folder
    ``Model.pretrained``, else the run's ``Global.output_dir`` (training copies them there)."""
    if cfg.Model.pretrained and os.path.isdir(cfg.Model.pretrained):
        return cfg.Model.pretrained
    return cfg.Global.output_dir


def model_from_config(cfg: ModelConfig, folder: str = ""):
    """``build_model(cfg.name, ...)``, or for ``bert``/``ernie`` the text classifier of
    ``folder/config.json`` (dropout rates from ``Model.dropout`` / ``Model.attn_dropout``); a
    value the model rejects is a config error.

    Built under a fresh name scope, so parameter names do not depend on what else the
    process created before.
    """
    if is_text(cfg):
        from rdrop_paddle.models.bert_config import read_config
        from rdrop_paddle.models.pretrained import text_classifier

        arch = read_config(folder)
        if arch.model_type != cfg.name:
            raise UserInputError(f"Model.name is {cfg.name} but {os.path.join(folder, 'config.json')} is a "
                                 f"{arch.model_type} model; set Model.name: {arch.model_type}")
        weights = cfg.pretrained
        if weights and os.path.isdir(weights):
            weights = os.path.join(weights, "model.pdparams")
        return text_classifier(arch, cfg.num_classes or 2, cfg.dropout, cfg.attn_dropout, weights,
                               os.path.join(folder, "config.json"))
    try:
        with paddle.utils.unique_name.guard():
            return build_model(cfg.name, **cfg.kwargs())
    except ValueError as e:
        raise UserInputError(f"Model: {e}") from None


def in_chans_of(cfg: ModelConfig) -> int:
    """Input channels of model ``cfg.name`` (built without initialising weights); 0 for text."""
    if is_text(cfg):
        return 0
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


def copy_text_files(cfg: Config) -> None:
    """Keep a text model's ``config.json``, ``vocab.txt`` (and ``tokenizer_config.json``) in the
    run's folder, so that evaluation and export need only the run (written atomically)."""
    import shutil

    from rdrop_paddle.io import atomic_write

    src = text_dir(cfg)
    if not is_text(cfg.Model) or os.path.abspath(src) == os.path.abspath(cfg.Global.output_dir):
        return
    for name in TEXT_FILES:
        if os.path.isfile(os.path.join(src, name)):
            atomic_write(os.path.join(cfg.Global.output_dir, name),
                         lambda tmp, n=name: shutil.copyfile(os.path.join(src, n), tmp))


def datasets_of(cfg: Config, in_chans: int) -> tuple:
    """The (train, val) data sets ``cfg`` names (text: tokenised with the model's vocab)."""
    from rdrop_paddle.data import TEXT_SOURCES, build_datasets

    if is_text(cfg.Model) != (cfg.Data.name in TEXT_SOURCES):
        kind = "text" if cfg.Data.name in TEXT_SOURCES else "image"
        wanted = " or ".join(TEXT_MODELS) if kind == "text" else "an image model such as vit_small_patch16_224"
        raise UserInputError(f"Data.name {cfg.Data.name} is {kind} data but Model.name {cfg.Model.name} is "
                             f"{'a text' if is_text(cfg.Model) else 'an image'} model; set Model.name to {wanted}")
    if is_text(cfg.Model):
        from rdrop_paddle.models.bert_config import check_inputs_fit, read_config

        check_inputs_fit(read_config(text_dir(cfg)), text_dir(cfg), cfg.Data.max_seq_len, "Data.max_seq_len")
    return build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes, in_chans, text_dir(cfg))


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
