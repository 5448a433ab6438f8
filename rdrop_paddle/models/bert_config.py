"""The architecture of a BERT-family encoder, read from a Hugging Face ``config.json``.

``model_type`` ``bert`` (Devlin et al., 2019) and ``ernie`` (ERNIE 3.0 as transformers
ships it: BERT plus optional task-type embeddings, ``use_task_id``).  Every value is
checked before a layer is built: a wrong file is one message naming the file and key.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import read_json

MODEL_TYPES = ("bert", "ernie")
ACTIVATIONS = ("gelu", "relu", "tanh", "gelu_new", "gelu_pytorch_tanh")
_LIMITS = {"vocab_size": 1 << 21, "hidden_size": 16384, "num_hidden_layers": 256, "num_attention_heads": 512,
           "intermediate_size": 65536, "max_position_embeddings": 1 << 17, "type_vocab_size": 1024,
           "task_type_vocab_size": 1024}


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """The subset of ``BertConfig`` / ``ErnieConfig`` the encoder and its classifier use."""
    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    classifier_dropout: Optional[float] = None  # None: hidden_dropout_prob (transformers)
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    task_type_vocab_size: int = 3
    use_task_id: bool = False
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_config(raw: dict, where: str) -> TextConfig:
    """A :class:`TextConfig` from the dict of a ``config.json`` (unused keys ignored, as
    transformers does); a missing or impossible value is an error naming ``where``."""
    if not isinstance(raw, dict):
        raise UserInputError(f"{where}: not a JSON object")
    kind = raw.get("model_type")
    if kind not in MODEL_TYPES:
        raise UserInputError(f"{where}: model_type {str(kind)[:40]!r} is not a text encoder this package builds "
                             f"(valid: {', '.join(MODEL_TYPES)})")
    values = {}
    for f in dataclasses.fields(TextConfig):
        if f.name not in raw or (f.name == "classifier_dropout" and raw[f.name] is None):
            continue
        value, kind_of = raw[f.name], type(f.default) if f.default is not None else float
        if kind_of is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind_of) or (kind_of is int and isinstance(value, bool)):
            raise UserInputError(f"{where}: {f.name} is {str(value)[:40]!r}, expected a {kind_of.__name__}")
        values[f.name] = value
    cfg = TextConfig(**values)
    for key, limit in _LIMITS.items():
        if not 1 <= getattr(cfg, key) <= limit:
            raise UserInputError(f"{where}: {key} {getattr(cfg, key)} is outside [1, {limit}]")
    if cfg.hidden_size % cfg.num_attention_heads:
        raise UserInputError(f"{where}: hidden_size {cfg.hidden_size} is not divisible by num_attention_heads "
                             f"{cfg.num_attention_heads}")
    if cfg.hidden_act not in ACTIVATIONS:
        raise UserInputError(f"{where}: hidden_act {cfg.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        p = getattr(cfg, key)
        if p is not None and not 0.0 <= p < 1.0:
            raise UserInputError(f"{where}: {key} {p} is outside [0, 1)")
    if not 0 < cfg.layer_norm_eps < 1 or not 0 <= cfg.pad_token_id < cfg.vocab_size:
        raise UserInputError(f"{where}: layer_norm_eps {cfg.layer_norm_eps} or pad_token_id {cfg.pad_token_id} "
                             f"is out of range")
    return cfg


def read_config(folder: str) -> TextConfig:
    """The :class:`TextConfig` of ``folder/config.json``."""
    path = os.path.join(folder, "config.json")
    return parse_config(read_json(path), path)


def check_inputs_fit(cfg: TextConfig, folder: str, max_seq_len: int = 0, length_key: str = "") -> None:
    """The tokenizer of ``folder`` and sequences of ``max_seq_len`` fit ``cfg``'s tables: every
    token id below ``vocab_size``, every position below ``max_position_embeddings`` (else the
    embedding op fails, or a runtime without bounds checks answers silently wrong); ``max_seq_len``
    0 checks the tokenizer alone."""
    from rdrop_paddle.io.tokenizer_files import token_count

    where = os.path.join(folder, "config.json")
    if max_seq_len > cfg.max_position_embeddings:
        raise UserInputError(f"{length_key} {max_seq_len} is longer than the model's max_position_embeddings "
                             f"{cfg.max_position_embeddings} ({where})")
    tokens = token_count(folder)
    if tokens > cfg.vocab_size:
        source = "tokenizer.json" if os.path.lexists(os.path.join(folder, "tokenizer.json")) else "vocab.txt"
        raise UserInputError(f"{os.path.join(folder, source)}: the tokenizer has {tokens:,} token ids but the model's vocab_size is "
                             f"{cfg.vocab_size:,} ({where}): the embedding has no row for the ids above it")
