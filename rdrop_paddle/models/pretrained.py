"""``from_pretrained``: a text classifier from a converted folder (``config.json``,
``model.pdparams``), as transformers' ``AutoModelForSequenceClassification.from_pretrained``."""
from __future__ import annotations

import math
import os
from typing import Optional

import paddle

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights, check_fits, load_paddle
from rdrop_paddle.models.bert import TextClassifier
from rdrop_paddle.models.bert_config import TextConfig, read_config


MAX_PARAMETERS = 4_000_000_000  # BERT-xlarge and ERNIE 3.0 xbase are 0.3-1.3 B; 16 GB of float32


def planned_shapes(cfg: TextConfig, num_classes: int, where: str = "config.json") -> dict[str, tuple]:
    """The parameter shapes of a ``cfg`` classifier, found without allocating them (Paddle's
    ``LazyGuard``); a model of more than :data:`MAX_PARAMETERS` is one error naming ``where``."""
    with paddle.LazyGuard(), paddle.utils.unique_name.guard():
        shapes = {k: tuple(v.shape) for k, v in TextClassifier(cfg, num_classes).state_dict().items()}
    count = sum(math.prod(s) for s in shapes.values())
    if count > MAX_PARAMETERS:
        raise UserInputError(f"{where}: its sizes make a model of {count:,} parameters, more than "
                             f"{MAX_PARAMETERS:,}; nothing was built")
    return shapes


def check_weights_size(shapes: dict[str, tuple], weights: str, where: str) -> None:
    """Refuse, before the model is built, a weights file too small to hold the encoder that
    ``shapes`` plans (at 2 bytes a value, float16's): config and weights do not belong together."""
    planned = sum(math.prod(s) for k, s in shapes.items() if not k.startswith("classifier."))
    if os.path.isfile(weights) and 2 * planned > os.path.getsize(weights) + (1 << 20):
        raise UserInputError(f"{where} describes an encoder of {planned:,} parameters, but {weights} has only "
                             f"{os.path.getsize(weights):,} bytes: they do not belong together; nothing was built")


def text_classifier(cfg: TextConfig, num_classes: int, hidden_dropout: Optional[float] = None,
                    attention_dropout: Optional[float] = None, weights: str = "",
                    where: str = "config.json") -> TextClassifier:
    """A :class:`TextClassifier` of ``cfg`` with its dropout rates optionally replaced
    (``hidden_dropout`` also sets the classifier's, as transformers' default does); its size
    is bounded, and checked against the ``weights`` file it will load, before it is built."""
    check_weights_size(planned_shapes(cfg, num_classes, where), weights, where)
    return _build(cfg, num_classes, hidden_dropout, attention_dropout)


def _build(cfg: TextConfig, num_classes: int, hidden_dropout: Optional[float] = None,
           attention_dropout: Optional[float] = None) -> TextClassifier:
    import dataclasses

    changes = {}
    if hidden_dropout is not None:
        changes.update(hidden_dropout_prob=hidden_dropout, classifier_dropout=None)
    if attention_dropout is not None:
        changes["attention_probs_dropout_prob"] = attention_dropout
    with paddle.utils.unique_name.guard():
        return TextClassifier(dataclasses.replace(cfg, **changes), num_classes)


def fit_text_weights(state: dict, own: dict[str, tuple], num_classes: int, path: str, notice=print) -> dict:
    """``state`` checked against the model's shapes ``own``: a head of another size is dropped
    (with a notice), a head with only one of its two arrays, or any other missing, unexpected or
    mis-shaped key, is one error naming ``path``; floating-point arrays of another precision are
    cast to float32 with a notice."""
    head = [k for k in ("classifier.weight", "classifier.bias") if k in state]
    if len(head) == 1:
        raise UserInputError(f"{path}: has {head[0]} without its pair; not a whole classifier")
    if any(tuple(getattr(state[k], "shape", ())) != own[k] for k in head):
        notice(f"notice: {path}: its classifier has another class count than the model's "
               f"{num_classes}: the head starts fresh")
        state = {k: v for k, v in state.items() if k not in head}
    needed = {k: v for k, v in own.items() if k in state or not k.startswith("classifier.")}
    check_fits({k: tuple(getattr(v, "shape", ())) for k, v in state.items()}, needed, path)
    state, cast = as_weights(state, {k: "float32" for k in state}, path)
    if cast:
        notice(f"notice: {cast}")
    return state


def load_text_weights(model: TextClassifier, path: str, notice=print) -> None:
    """Load a ``.pdparams`` into ``model`` (:func:`fit_text_weights` decides what fits)."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = fit_text_weights(load_paddle(path), own, model.num_classes, path, notice)
    model.set_state_dict({**{k: v for k, v in model.state_dict().items() if k not in state}, **state})


def from_pretrained(folder: str, num_classes: int, hidden_dropout: Optional[float] = None,
                    attention_dropout: Optional[float] = None, notice=print) -> TextClassifier:
    """The classifier of converted folder ``folder`` with a ``num_classes`` head, weights loaded;
    the weights are read and checked against ``config.json`` before the model is built.

    Called as ``model(input_ids, token_type_ids=..., attention_mask=...)`` it returns logits
    ``[B, num_classes]``.
    """
    if str(folder).startswith("hf-hub:"):
        raise UserInputError(f"{folder}: a name, not a folder; rdrop_paddle.from_pretrained({folder!r}, ...) "
                             f"fetches and converts it")
    if not os.path.isdir(folder):
        raise UserInputError(f"{folder}: not a folder (convert a Hugging Face one with "
                             f"tools/convert_weights.py --format hf --src HF_DIR --out OUT_DIR)")
    cfg, path = read_config(folder), os.path.join(folder, "model.pdparams")
    where = os.path.join(folder, "config.json")
    shapes = planned_shapes(cfg, num_classes, where)
    check_weights_size(shapes, path, where)
    state = fit_text_weights(load_paddle(path), shapes, num_classes, path, notice)
    model = _build(cfg, num_classes, hidden_dropout, attention_dropout)  # planned and checked above
    model.set_state_dict({**{k: v for k, v in model.state_dict().items() if k not in state}, **state})
    return model
