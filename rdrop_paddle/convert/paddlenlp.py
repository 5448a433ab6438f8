"""PaddleNLP checkpoints: the folder ``save_pretrained`` of PaddleNLP (2.5 and later) writes
for ``ErnieFor*`` / ``BertFor*`` models — ``model_state.pdparams`` and ``config.json`` (or the
``model_config.json`` with ``init_args`` of older releases) beside ``vocab.txt`` and
``tokenizer_config.json`` — what ``PaddlePaddle/ernie-3.0-*-zh`` ship.

PaddleNLP builds the encoder from ``paddle.nn.TransformerEncoderLayer`` (post-norm, ``act_dropout``
0), so its weights are already Paddle's ``[in, out]`` and only the names differ from
transformers' layout.  Its LayerNorm epsilon is 1e-12: ``ErniePretrainedModel._init_weights`` sets
it on every LayerNorm of ERNIE, and BERT reads ``layer_norm_eps`` (default 1e-12).  The
``.pdparams`` pickle goes through the restricted unpickler (no code runs).
"""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_paddle, read_json
from rdrop_paddle.models.bert_config import TextConfig, parse_config

WEIGHTS = "model_state.pdparams"
# PaddleNLP name -> transformers' (and this package's) name, applied in order to each key
RENAMES = ((".embeddings.layer_norm.", ".embeddings.LayerNorm."), (".encoder.layers.", ".encoder.layer."),
           (".self_attn.q_proj.", ".attention.self.query."), (".self_attn.k_proj.", ".attention.self.key."),
           (".self_attn.v_proj.", ".attention.self.value."), (".self_attn.out_proj.", ".attention.output.dense."),
           (".norm1.", ".attention.output.LayerNorm."), (".linear1.", ".intermediate.dense."),
           (".linear2.", ".output.dense."), (".norm2.", ".output.LayerNorm."))
_DROPPED = ("cls.", "lm_head.", "linear_start.", "linear_end.", "linear_q.", "linear_k.")  # other task heads


def is_paddlenlp_folder(src: str) -> bool:
    return os.path.isfile(os.path.join(src, WEIGHTS))


def _config(src: str) -> tuple[dict, str]:
    """PaddleNLP's config dict and its path: ``config.json``, else ``model_config.json``'s ``init_args``."""
    path = os.path.join(src, "config.json")
    if os.path.isfile(path):
        raw = read_json(path)
    else:
        path = os.path.join(src, "model_config.json")
        raw = read_json(path)
        args = raw.get("init_args") if isinstance(raw, dict) else None
        raw = args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else raw
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: not a JSON object")
    return raw, path


def _model_type(raw: dict, state: dict, path: str) -> str:
    kind = raw.get("model_type")
    if kind is None:
        architecture = (raw.get("architectures") or [""])[0] if isinstance(raw.get("architectures"), list) else ""
        kind = next((k for k in ("ernie", "bert") if str(architecture).lower().startswith(k)), None)
    if kind is None:
        kind = next((k for k in ("ernie", "bert") if any(key.startswith(f"{k}.") for key in state)), None)
    if kind not in ("ernie", "bert"):
        raise UserInputError(f"{path}: not an ERNIE or BERT checkpoint (model_type {str(kind)[:40]!r})")
    return kind


def read_paddlenlp_folder(src: str) -> tuple[TextConfig, dict[str, np.ndarray]]:
    """The :class:`TextConfig` and this package's state dict of a PaddleNLP folder."""
    raw, path = _config(src)
    weights = os.path.join(src, WEIGHTS)
    state = load_paddle(weights)
    kind = _model_type(raw, state, path)
    for key, allowed in (("fuse", (False, None)), ("pool_act", ("tanh", None)), ("task_id", (0, None))):
        if raw.get(key) not in allowed:
            raise UserInputError(f"{path}: {key} {str(raw.get(key))[:40]} is not built here (only {allowed[0]})")
    eps = 1e-12 if kind == "ernie" else raw.get("layer_norm_eps", 1e-12)
    cfg = parse_config({**raw, "model_type": kind, "layer_norm_eps": eps}, path)
    out = {}
    for key, value in state.items():
        if key.startswith(_DROPPED):
            continue
        for old, new in RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return cfg, out
