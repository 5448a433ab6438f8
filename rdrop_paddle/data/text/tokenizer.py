"""WordPiece tokenisation of a ``vocab.txt`` through Hugging Face ``tokenizers``, built as
transformers' ``BertTokenizerFast`` builds it (same normaliser, pre-tokeniser, model,
template, truncation and padding), so ids are identical.

    tok = Tokenizer.from_pretrained("bert_paddle/")
    batch = tok(["a sentence"], text_pairs=None, max_length=128)   # NumPy int64 arrays
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from rdrop_paddle.errors import UserInputError

FIELDS = ("input_ids", "token_type_ids", "attention_mask")


def _library():
    try:
        import tokenizers
    except ImportError:
        raise UserInputError("text models need Hugging Face tokenizers: pip install tokenizers") from None
    return tokenizers


class Tokenizer:
    """``tok(texts, text_pairs=None, max_length=L)`` -> ``{input_ids, token_type_ids,
    attention_mask}`` as int64 arrays ``[B, longest]``: ``[CLS] a [SEP] (b [SEP])``,
    truncated longest-first to ``max_length``, padded with ``[PAD]`` to the longest."""

    def __init__(self, vocab: Sequence[str], do_lower_case: bool = True) -> None:
        lib = _library()
        from tokenizers import models, normalizers, pre_tokenizers, processors

        ids = {t: i for i, t in enumerate(vocab)}
        self.vocab, self.do_lower_case = list(vocab), do_lower_case
        self.pad_id, self.cls_id, self.sep_id = ids["[PAD]"], ids["[CLS]"], ids["[SEP]"]
        tok = lib.Tokenizer(models.WordPiece(ids, unk_token="[UNK]", continuing_subword_prefix="##",
                                             max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=None, lowercase=do_lower_case)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A:0 [SEP]:0", pair="[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", self.cls_id), ("[SEP]", self.sep_id)])
        self._tok = tok

    @classmethod
    def from_pretrained(cls, folder: str) -> "Tokenizer":
        """The tokenizer of a converted (or Hugging Face) folder: ``vocab.txt`` and
        ``tokenizer_config.json``'s ``do_lower_case``."""
        from rdrop_paddle.io.vocab import do_lower_case, read_vocab

        return cls(read_vocab(os.path.join(folder, "vocab.txt")), do_lower_case(folder))

    def encode(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None,
               max_length: int = 512) -> list[tuple[list[int], list[int]]]:
        """``(ids, type_ids)`` of each text (or pair), truncated, not padded."""
        if max_length < 3 + (text_pairs is not None):
            raise UserInputError(f"max_length {max_length} leaves no room for the text")
        for i, text in enumerate(list(texts) + list(text_pairs or [])):
            check_text(text, f"text {i % len(texts) + 1}" if texts else "a text")
        self._tok.enable_truncation(max_length, strategy="longest_first")
        self._tok.no_padding()
        inputs = list(texts) if text_pairs is None else list(zip(texts, text_pairs))
        return [(e.ids, e.type_ids) for e in self._tok.encode_batch(inputs)]

    def __call__(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None,
                 max_length: int = 512) -> dict[str, np.ndarray]:
        if isinstance(texts, str):
            texts, text_pairs = [texts], None if text_pairs is None else [text_pairs]
        return pad(self.encode(texts, text_pairs, max_length), self.pad_id)


def check_text(text: str, what: str) -> None:
    """A text the tokenizer may take: a string of valid Unicode (no lone surrogate, as a
    ``\\ud800`` JSON escape or an undecodable command-line byte gives) of at most
    :data:`~rdrop_paddle.data.text.sources.MAX_LINE_CHARS` characters."""
    from rdrop_paddle.data.text.sources import MAX_LINE_CHARS

    if not isinstance(text, str):
        raise UserInputError(f"{what} is a {type(text).__name__}, not text")
    if len(text) > MAX_LINE_CHARS:
        raise UserInputError(f"{what} is longer than {MAX_LINE_CHARS:,} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserInputError(f"{what} holds a lone surrogate {text[e.start]!r} at character {e.start + 1} "
                             f"(not valid Unicode: undecodable bytes?)") from None


def pad(encoded: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int = 0) -> dict[str, np.ndarray]:
    """Right-pad ``(ids, type_ids)`` pairs to the longest (dynamic padding per batch)."""
    n = max((len(ids) for ids, _ in encoded), default=0)
    out = {"input_ids": np.full((len(encoded), n), pad_id, np.int64),
           "token_type_ids": np.zeros((len(encoded), n), np.int64),
           "attention_mask": np.zeros((len(encoded), n), np.int64)}
    for row, (ids, types) in enumerate(encoded):
        out["input_ids"][row, :len(ids)] = ids
        out["token_type_ids"][row, :len(types)] = types
        out["attention_mask"][row, :len(ids)] = 1
    return out
