"""Hugging Face BERT / ERNIE folders -> a Paddle text folder (``tools/convert_weights.py --format hf``).

``HF_DIR`` holds ``config.json`` (``model_type`` bert or ernie), weights in any layout
``save_pretrained`` writes (:mod:`~rdrop_paddle.convert.shards`) and the tokenizer files
(``tokenizer.json`` and/or ``vocab.txt``, ``tokenizer_config.json``); ``OUT_DIR`` gets
``model.pdparams``, ``config.json`` and the same tokenizer files, which
:func:`rdrop_paddle.models.from_pretrained` and :meth:`rdrop_paddle.data.text.Tokenizer.from_pretrained` read.  Everything is checked
before anything is written, and the folder appears whole or not at all.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from rdrop_paddle.convert.paddlenlp import is_paddlenlp_folder, read_paddlenlp_folder
from rdrop_paddle.convert.shards import read_hf_weights
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights, check_fits, read_json
from rdrop_paddle.io.tokenizer_files import TOKENIZER_FILES, read_settings
from rdrop_paddle.models.bert_config import TextConfig, check_inputs_fit, parse_config

_DROPPED = ("cls.", "lm_head.", "qa_outputs.")  # pre-training and other task heads
_BUFFERS = ("position_ids", "token_type_ids")  # integer buffers older transformers saved, not weights


def convert_text_state_dict(source: dict[str, np.ndarray], cfg: TextConfig, target: dict[str, tuple],
                            transposed: bool = True) -> tuple[dict[str, np.ndarray], list[str]]:
    """A transformers BERT/ERNIE state dict -> :class:`~rdrop_paddle.models.bert.TextClassifier`
    keys: the encoder under ``{model_type}.``, LayerNorm ``gamma``/``beta`` renamed, Linear
    weights transposed to Paddle's ``[in, out]`` (``transposed=False``: they already are, as
    PaddleNLP's); pre-training heads and ``position_ids`` dropped.  ``target`` gives the model's shapes; a classifier of another size is left out
    (initialised fresh, with a notice); any other missing or mis-shaped key is an error."""
    base, state, notices = cfg.model_type, {}, []
    encoder_parts = ("embeddings.", "encoder.", "pooler.")
    for key, value in source.items():
        if key.startswith(_DROPPED) or key.endswith(_BUFFERS):
            continue
        name = f"{base}.{key}" if key.startswith(encoder_parts) else key
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if transposed and value.ndim == 2 and name.endswith(".weight") and "_embeddings." not in name:
            value = np.ascontiguousarray(value.T)
        state[name] = value
    head = [k for k in ("classifier.weight", "classifier.bias") if k in state]
    if len(head) == 1:
        raise UserInputError(f"the weights have {head[0]} but not "
                             f"{({'classifier.weight', 'classifier.bias'} - set(head)).pop()}; not a whole classifier")
    if any(tuple(state[k].shape) != target[k] for k in head):
        notices.append(f"the checkpoint's classifier has {state['classifier.bias'].shape[0]} classes, the model "
                       f"{target['classifier.bias'][0]}: the head starts fresh")
        for k in head:
            del state[k]
    fresh = sorted(k for k in target if k not in state and k.startswith(("classifier.", f"{base}.pooler.")))
    if fresh:
        notices.append(f"the checkpoint has no {', '.join(fresh)}: {'they start' if len(fresh) > 1 else 'it starts'} "
                       f"fresh (train before use)")
    needed = {k: v for k, v in target.items() if k not in fresh}
    check_fits({k: tuple(v.shape) for k, v in state.items()}, needed, "the weights")
    return state, notices


def read_text_folder(src: str) -> tuple[TextConfig, dict[str, np.ndarray], list[str]]:
    """Config, float32 weights and notices of a Hugging Face (or converted) folder, checked
    against each other and against its tokenizer files."""
    if is_paddlenlp_folder(src):
        cfg, state = read_paddlenlp_folder(src)
        weights_path = os.path.join(src, "model_state.pdparams")
    else:
        config_path = os.path.join(src, "config.json")
        cfg = parse_config(read_json(config_path), config_path)
        weights_path, state = read_hf_weights(src)
    state = {k: v for k, v in state.items() if not k.endswith(_BUFFERS)}
    state, cast = as_weights(state, {k: np.float32 for k in state}, weights_path)
    bad = next((k for k, v in state.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise UserInputError(f"{weights_path}: {bad} holds NaN or infinite values; nothing was written")
    if not any(os.path.lexists(os.path.join(src, name)) for name in ("tokenizer.json", "vocab.txt")):
        raise UserInputError(f"{src}: no tokenizer.json or vocab.txt (the model's tokenizer is needed)")
    read_settings(src)  # a tokenizer_config.json that does not parse stops here, not at training
    check_inputs_fit(cfg, src)
    return cfg, state, [cast] if cast else []


def convert_text_folder(src: str, out: str, num_classes: int = 0) -> list[str]:
    """Convert a Hugging Face (or PaddleNLP: :mod:`~rdrop_paddle.convert.paddlenlp`) folder ``src`` into Paddle folder ``out`` (must not exist or be empty);
    ``num_classes`` 0 keeps the checkpoint's head (or none).  The tokenizer files are kept as
    they are; ``config.json`` keeps ``id2label``/``label2id``.  Returns notices."""
    import paddle

    from rdrop_paddle.io import make_folder, save_paddle, write_json
    from rdrop_paddle.models.bert import TextClassifier

    if os.path.islink(out) or (os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out))):
        raise UserInputError(f"--out {out} exists and is not an empty folder; nothing was written")
    cfg, source, notices = read_text_folder(src)
    head = source.get("classifier.bias")
    classes = num_classes or (int(head.shape[0]) if head is not None and head.ndim == 1 else 2)
    with paddle.LazyGuard():
        target = {k: tuple(v.shape) for k, v in TextClassifier(cfg, classes).state_dict().items()}
    state, more = convert_text_state_dict(source, cfg, target, transposed=not is_paddlenlp_folder(src))
    config_path = os.path.join(src, "config.json")
    labels = label_names(read_json(config_path), classes) if os.path.isfile(config_path) else {}
    parent = os.path.dirname(os.path.abspath(out))
    make_folder(parent, "the folder of --out")
    try:
        stage = tempfile.mkdtemp(prefix=".convert-", dir=parent)
    except OSError as e:
        raise UserInputError(f"cannot write in {parent}: {e.strerror or e}; nothing was written") from None
    try:
        save_paddle({k: paddle.to_tensor(v) for k, v in state.items()}, os.path.join(stage, "model.pdparams"))
        write_json({**cfg.to_dict(), **labels}, os.path.join(stage, "config.json"))
        for name in TOKENIZER_FILES:
            if os.path.isfile(os.path.join(src, name)):
                shutil.copyfile(os.path.join(src, name), os.path.join(stage, name))
        try:
            if os.path.isdir(out):
                os.rmdir(out)  # empty (checked above)
            os.rename(stage, out)
        except OSError as e:
            raise UserInputError(f"cannot create --out {out}: {e.strerror or e}; nothing was written") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return notices + more


def label_names(config: dict, classes: int) -> dict:
    """``config.json``'s ``id2label`` and ``label2id`` when they name the ``classes`` classes
    (transformers' ``LABEL_i`` placeholders included), checked; else nothing."""
    id2label = config.get("id2label") if isinstance(config, dict) else None
    if not isinstance(id2label, dict) or len(id2label) != classes:
        return {}
    try:
        names = [id2label[str(i)] for i in range(classes)]
    except KeyError:
        return {}
    if not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names) or len(set(names)) != classes:
        return {}
    return {"id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}
