"""A BERT-family encoder with a sequence-classification head (Devlin et al., 2019).

Parameter names are those of transformers' ``BertForSequenceClassification`` /
``ErnieForSequenceClassification`` (the encoder under ``bert.`` or ``ernie.``), so a
Hugging Face state dict maps by name, Linear weights transposed
(:func:`rdrop_paddle.convert.text.convert_text_state_dict`).  Dropout sites are
transformers': after the embeddings and after each attention-output and FFN-output dense
(``hidden_dropout_prob``), on the attention probabilities (``attention_probs_dropout_prob``)
and before the classifier (``classifier_dropout``, default ``hidden_dropout_prob``).  R-Drop's
two passes differ only there.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from rdrop_paddle.models.bert_config import TextConfig
from rdrop_paddle.models.layers import Dropout, LayerNorm, Linear

_MIN = float(np.finfo(np.float32).min)  # transformers' additive mask value
_ACT = {"gelu": F.gelu, "relu": F.relu, "tanh": paddle.tanh,
        "gelu_new": lambda x: F.gelu(x, approximate=True), "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate=True)}


class Embeddings(nn.Layer):
    """Word + position + token-type (+ ERNIE's task-type) embeddings, LayerNorm, dropout."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.use_task_id = cfg.model_type == "ernie" and cfg.use_task_id
        if self.use_task_id:
            self.task_type_embeddings = nn.Embedding(cfg.task_type_vocab_size, cfg.hidden_size)
        self.LayerNorm = LayerNorm(cfg.hidden_size, epsilon=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None, task_type_ids=None):
        positions = paddle.arange(input_ids.shape[1], dtype="int64").unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)
        if self.use_task_id:
            x = x + self.task_type_embeddings(paddle.zeros_like(input_ids) if task_type_ids is None else task_type_ids)
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Layer):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        self.query = Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = Dropout(cfg.attention_probs_dropout_prob)

    def _heads(self, x):
        b, n, _ = x.shape
        return x.reshape([b, n, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

    def forward(self, x, mask_bias):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(self.head_dim) + mask_bias
        probs = self.dropout(F.softmax(scores, axis=-1))
        b, _, n, _ = probs.shape
        return paddle.matmul(probs, v).transpose([0, 2, 1, 3]).reshape([b, n, self.num_heads * self.head_dim])


class AddNorm(nn.Layer):
    """``LayerNorm(dropout(dense(x)) + residual)``: BertSelfOutput and BertOutput."""

    def __init__(self, cfg: TextConfig, width: int) -> None:
        super().__init__()
        self.dense = Linear(width, cfg.hidden_size)
        self.LayerNorm = LayerNorm(cfg.hidden_size, epsilon=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Layer):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        setattr(self, "self", SelfAttention(cfg))  # transformers' name: attention.self.query
        self.output = AddNorm(cfg, cfg.hidden_size)

    def forward(self, x, mask_bias):
        return self.output(getattr(self, "self")(x, mask_bias), x)


class Intermediate(nn.Layer):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACT[cfg.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class EncoderLayer(nn.Layer):
    """One post-norm transformer layer (BertLayer)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = AddNorm(cfg, cfg.intermediate_size)

    def forward(self, x, mask_bias):
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Layer):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.layer = nn.LayerList([EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x, mask_bias):
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class Pooler(nn.Layer):
    """``tanh(dense(h_[CLS]))``."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, hidden):
        return paddle.tanh(self.dense(hidden[:, 0]))


class TextEncoder(nn.Layer):
    """BertModel / ErnieModel: embeddings, encoder, pooler."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.pooler = Pooler(cfg)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, task_type_ids=None):
        if attention_mask is None:
            attention_mask = paddle.ones_like(input_ids)
        # 0 where a token may be attended to, the float minimum where it is padding (transformers)
        mask_bias = (1.0 - attention_mask.astype("float32")).unsqueeze([1, 2]) * _MIN
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids, task_type_ids), mask_bias)
        return hidden, self.pooler(hidden)


class TextClassifier(nn.Layer):
    """BertForSequenceClassification / ErnieForSequenceClassification: logits ``[B, num_classes]``.

    Args:
        cfg: the encoder's architecture (:func:`rdrop_paddle.models.bert_config.read_config`).
        num_classes: size of the head.
    """

    def __init__(self, cfg: TextConfig, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.config, self.num_classes = cfg, num_classes
        self.base_name = cfg.model_type  # the encoder's attribute: bert or ernie, as in transformers
        init = nn.initializer.Normal(std=cfg.initializer_range)
        setattr(self, self.base_name, TextEncoder(cfg))
        p = cfg.hidden_dropout_prob if cfg.classifier_dropout is None else cfg.classifier_dropout
        self.dropout = Dropout(p)
        self.classifier = Linear(cfg.hidden_size, num_classes,
                                 weight_attr=paddle.ParamAttr(initializer=init),
                                 bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)))
        self.in_chans = 0  # not an image model

    @property
    def encoder_model(self) -> TextEncoder:
        return getattr(self, self.base_name)

    def forward(self, input_ids: paddle.Tensor, token_type_ids: Optional[paddle.Tensor] = None,
                attention_mask: Optional[paddle.Tensor] = None,
                task_type_ids: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        _, pooled = self.encoder_model(input_ids, token_type_ids, attention_mask, task_type_ids)
        return self.classifier(self.dropout(pooled))
