"""``from_pretrained``: a text classifier from a converted folder (``config.json``,
``model.pdparams``), as transformers' ``AutoModelForSequenceClassification.from_pretrained``."""
from __future__ import annotations

import os
from typing import Optional

import paddle

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import check_fits, load_paddle
from rdrop_paddle.models.bert import TextClassifier
from rdrop_paddle.models.bert_config import TextConfig, read_config


def text_classifier(cfg: TextConfig, num_classes: int, hidden_dropout: Optional[float] = None,
                    attention_dropout: Optional[float] = None) -> TextClassifier:
    """A :class:`TextClassifier` of ``cfg`` with its dropout rates optionally replaced
    (``hidden_dropout`` also sets the classifier's, as transformers' default does)."""
    import dataclasses

    changes = {}
    if hidden_dropout is not None:
        changes.update(hidden_dropout_prob=hidden_dropout, classifier_dropout=None)
    if attention_dropout is not None:
        changes["attention_probs_dropout_prob"] = attention_dropout
    with paddle.utils.unique_name.guard():
        return TextClassifier(dataclasses.replace(cfg, **changes), num_classes)


def load_text_weights(model: TextClassifier, path: str, notice=print) -> None:
    """Load a ``.pdparams`` into ``model``; a head of another size is left as initialised
    (with a notice), any other mismatch is one error naming ``path``."""
    state = load_paddle(path)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    head = [k for k in ("classifier.weight", "classifier.bias") if k in state]
    if any(tuple(getattr(state[k], "shape", ())) != own[k] for k in head):
        notice(f"notice: {path}: its classifier has another class count than the model's "
               f"{model.num_classes}: the head starts fresh")
        state = {k: v for k, v in state.items() if k not in head}
    needed = {k: v for k, v in own.items() if k in state or not k.startswith("classifier.")}
    check_fits({k: tuple(getattr(v, "shape", ())) for k, v in state.items()}, needed, path)
    model.set_state_dict({**{k: v for k, v in model.state_dict().items() if k not in state}, **state})


def from_pretrained(folder: str, num_classes: int, hidden_dropout: Optional[float] = None,
                    attention_dropout: Optional[float] = None, notice=print) -> TextClassifier:
    """The classifier of converted folder ``folder`` with a ``num_classes`` head, weights loaded.

    Called as ``model(input_ids, token_type_ids=..., attention_mask=...)`` it returns logits
    ``[B, num_classes]``.
    """
    if not os.path.isdir(folder):
        raise UserInputError(f"{folder}: not a folder (convert a Hugging Face one with "
                             f"tools/convert_weights.py --format hf --src HF_DIR --out OUT_DIR)")
    model = text_classifier(read_config(folder), num_classes, hidden_dropout, attention_dropout)
    load_text_weights(model, os.path.join(folder, "model.pdparams"), notice)
    return model
