"""A WordPiece ``vocab.txt`` and ``tokenizer_config.json``'s ``do_lower_case``: read by the
weight converter and the tokenizer, bounded and checked."""
from __future__ import annotations

import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import read_json, read_small

MAX_VOCAB_BYTES = 64 << 20


def read_vocab(path: str) -> list[str]:
    """The tokens of a WordPiece ``vocab.txt`` (one a line, UTF-8, bounded in bytes); line ends
    are read as Python's text mode reads them, as transformers does."""
    raw = read_small(path, MAX_VOCAB_BYTES, "WordPiece vocab.txt")
    try:
        tokens = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 (byte {e.start}); not a vocab.txt") from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    for needed in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
        if needed not in tokens:
            raise UserInputError(f"{path}: has no {needed} token; not a BERT WordPiece vocab")
    return tokens


def do_lower_case(folder: str) -> bool:
    """``tokenizer_config.json``'s ``do_lower_case`` (default true, as BertTokenizer's)."""
    path = os.path.join(folder, "tokenizer_config.json")
    if not os.path.isfile(path):
        return True
    value = read_json(path)
    value = value.get("do_lower_case", True) if isinstance(value, dict) else None
    if not isinstance(value, bool):
        raise UserInputError(f"{path}: do_lower_case must be true or false")
    return value
