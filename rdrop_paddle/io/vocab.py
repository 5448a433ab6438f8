"""A WordPiece ``vocab.txt``: read by the weight converter and the tokenizer, bounded and checked."""
from __future__ import annotations

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import read_small

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
