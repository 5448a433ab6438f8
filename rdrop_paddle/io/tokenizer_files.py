"""A tokenizer folder's files: ``tokenizer_config.json`` (and ``special_tokens_map.json``,
``added_tokens.json``) read as transformers reads them, each value checked, and
``tokenizer.json`` read bounded and checked to hold a WordPiece model before ``tokenizers``
parses it."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import read_json, read_small

MAX_TOKENIZER_BYTES = 64 << 20  # tokenizer.json of a 250k-token multilingual vocab is ~17 MB
MAX_ADDED = 100_000
# the files that define a tokenizer: converted folders, runs and exports keep them all
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                   "added_tokens.json")
SPECIAL = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclasses.dataclass(frozen=True)
class TokenizerSettings:
    """What ``BertTokenizer`` takes from ``tokenizer_config.json`` (its defaults)."""
    do_lower_case: bool = True
    strip_accents: Optional[bool] = None  # None: follow do_lower_case, as original BERT
    tokenize_chinese_chars: bool = True
    unk_token: str = "[UNK]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    cls_token: str = "[CLS]"
    mask_token: str = "[MASK]"
    additional_special_tokens: tuple = ()
    added: tuple = ()  # (token, special) of added tokens, in id order
    padding_side: str = "right"
    truncation_side: str = "right"

    def special_tokens(self) -> list[str]:
        return [getattr(self, name) for name in SPECIAL] + list(self.additional_special_tokens)


def _token(value, where: str) -> str:
    """A special token as a string (``{"content": "[CLS]", ...}`` is the AddedToken form)."""
    if isinstance(value, dict):
        value = value.get("content")
    if not isinstance(value, str) or not value or len(value) > 100:
        raise UserInputError(f"{where} is {str(value)[:40]!r}, not a token")
    return value


def _optional(path: str) -> dict:
    if not os.path.lexists(path):
        return {}
    value = read_json(path, MAX_TOKENIZER_BYTES)
    if not isinstance(value, dict):
        raise UserInputError(f"{path}: not a JSON object")
    return value


def read_settings(folder: str) -> TokenizerSettings:
    """The :class:`TokenizerSettings` of ``folder`` (defaults where it has no config)."""
    config_path = os.path.join(folder, "tokenizer_config.json")
    config = {**_optional(os.path.join(folder, "special_tokens_map.json")), **_optional(config_path)}
    values: dict = {}
    for key in ("do_lower_case", "tokenize_chinese_chars", "strip_accents"):
        value = config.get(key, TokenizerSettings.__dataclass_fields__[key].default)
        if not (isinstance(value, bool) or (key == "strip_accents" and value is None)):
            raise UserInputError(f"{config_path}: {key} must be true or false, got {str(value)[:40]!r}")
        values[key] = value
    for key in SPECIAL:
        if config.get(key) is not None:
            values[key] = _token(config[key], f"{config_path}: {key}")
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
    if not isinstance(extra, list) or len(extra) > MAX_ADDED:
        raise UserInputError(f"{config_path}: additional_special_tokens is not a list of tokens")
    values["additional_special_tokens"] = tuple(_token(t, f"{config_path}: additional_special_tokens") for t in extra)
    for key in ("padding_side", "truncation_side"):
        value = config.get(key, "right")
        if value not in ("right", "left"):
            raise UserInputError(f"{config_path}: {key} must be right or left, got {str(value)[:40]!r}")
        values[key] = value
    values["added"] = _added_tokens(folder, config, config_path)
    return TokenizerSettings(**values)


def _added_tokens(folder: str, config: dict, config_path: str) -> tuple:
    """``(token, special)`` in id order: ``tokenizer_config.json``'s ``added_tokens_decoder``,
    else ``added_tokens.json``."""
    decoder = config.get("added_tokens_decoder")
    if decoder is not None:
        if not isinstance(decoder, dict) or len(decoder) > MAX_ADDED:
            raise UserInputError(f"{config_path}: added_tokens_decoder is not an object of tokens")
        rows = []
        for key, value in decoder.items():
            if not (isinstance(key, str) and key.isdigit() and isinstance(value, dict)):
                raise UserInputError(f"{config_path}: added_tokens_decoder entry {key[:20]!r} is not id: token")
            rows.append((int(key), _token(value, f"{config_path}: added token {key}"), bool(value.get("special"))))
        return tuple((token, special) for _, token, special in sorted(rows))
    listing = _optional(os.path.join(folder, "added_tokens.json"))
    if len(listing) > MAX_ADDED or not all(isinstance(v, int) and not isinstance(v, bool) for v in listing.values()):
        raise UserInputError(f"{os.path.join(folder, 'added_tokens.json')}: not an object of token: id")
    return tuple((token, False) for token, _ in sorted(listing.items(), key=lambda item: item[1]))


def read_tokenizer_json(path: str) -> tuple[str, dict]:
    """The text and parsed form of a ``tokenizer.json``: bounded, and a WordPiece model (what
    BERT and ERNIE use) checked before ``tokenizers`` sees it."""
    raw = read_small(path, MAX_TOKENIZER_BYTES, "tokenizer.json")
    try:
        text = raw.decode("utf-8")
        spec = json.loads(text, parse_constant=lambda name: None)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise UserInputError(f"{path}: not a readable JSON file ({type(e).__name__})") from None
    model = spec.get("model") if isinstance(spec, dict) else None
    kind = model.get("type") if isinstance(model, dict) else None
    if kind != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise UserInputError(f"{path}: a {str(kind)[:20]} tokenizer, not the WordPiece tokenizer of a BERT-family "
                             f"model")
    return text, spec


def token_count(folder: str) -> int:
    """How many token ids the tokenizer of ``folder`` can produce (its largest id + 1), read
    without building it: what the model's ``vocab_size`` must cover."""
    from rdrop_paddle.io.vocab import read_vocab

    path = os.path.join(folder, "tokenizer.json")
    if os.path.lexists(path):
        spec = read_tokenizer_json(path)[1]
        ids = [v for v in spec["model"]["vocab"].values() if isinstance(v, int)]
        ids += [t.get("id") for t in spec.get("added_tokens") or [] if isinstance(t, dict) and isinstance(t.get("id"), int)]
        return max(ids, default=-1) + 1
    vocab = read_vocab(os.path.join(folder, "vocab.txt"))
    known = set(vocab)
    settings = read_settings(folder)
    extra = {t for t in settings.special_tokens() + [t for t, _ in settings.added] if t not in known}
    return len(vocab) + len(extra)
