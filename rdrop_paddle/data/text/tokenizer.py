"""One tokenizer door for BERT-family folders, through Hugging Face ``tokenizers``, as
transformers 5 loads them (``AutoTokenizer.from_pretrained``):

- a folder with ``tokenizer.json`` (what ``save_pretrained`` writes today): that file, loaded
  by ``tokenizers`` exactly as transformers' fast tokenizers load it; it must hold a WordPiece
  model (a BPE or Unigram file is refused);
- a folder with only ``vocab.txt`` (older releases, PaddleNLP): the ``BertTokenizer``
  pipeline built from ``tokenizer_config.json``'s options (``do_lower_case``,
  ``strip_accents``, ``tokenize_chinese_chars``, special tokens, added tokens).

Either way the special tokens are added tokens, so ``[MASK]`` typed in a text stays one
token; ``tokenizer_config.json``'s ``truncation_side`` and ``padding_side`` apply.

    tok = Tokenizer.from_pretrained("bert_paddle/")
    batch = tok(["a sentence"], text_pairs=None, max_length=128)   # NumPy int64 arrays
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.tokenizer_files import TokenizerSettings, read_settings, read_tokenizer_json

FIELDS = ("input_ids", "token_type_ids", "attention_mask")


def _library():
    try:
        import tokenizers
    except ImportError:
        raise UserInputError("text models need Hugging Face tokenizers: pip install tokenizers") from None
    return tokenizers


def wordpiece(vocab: Sequence[str], settings: TokenizerSettings):
    """The ``BertTokenizer`` pipeline of transformers 5 on ``vocab``: WordPiece with ``##``,
    the BERT normaliser with the settings' options, BERT pre-tokeniser, ``[CLS] A [SEP] B [SEP]``."""
    lib = _library()
    from tokenizers import models, normalizers, pre_tokenizers, processors

    ids = {t: i for i, t in enumerate(vocab)}
    tok = lib.Tokenizer(models.WordPiece(ids, unk_token=settings.unk_token, continuing_subword_prefix="##",
                                         max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=settings.tokenize_chinese_chars,
                                                strip_accents=settings.strip_accents, lowercase=settings.do_lower_case)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = settings.cls_token, settings.sep_token
    for token in (cls, sep):
        if token not in ids:
            raise UserInputError(f"the vocabulary has no {token} token; not a BERT WordPiece vocab")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    return tok


class Tokenizer:
    """``tok(texts, text_pairs=None, max_length=L)`` -> ``{input_ids, token_type_ids,
    attention_mask}`` as int64 arrays ``[B, longest]``: ``[CLS] a [SEP] (b [SEP])``,
    truncated longest-first to ``max_length``, padded with ``[PAD]`` to the longest."""

    def __init__(self, vocab: Sequence[str] = (), do_lower_case: bool = True, *, backend=None,
                 settings: Optional[TokenizerSettings] = None) -> None:
        from tokenizers import AddedToken

        self.settings = settings or TokenizerSettings(do_lower_case=do_lower_case)
        self._tok = backend if backend is not None else wordpiece(vocab, self.settings)
        if backend is None:  # tokenizer.json lists its own added tokens
            self._tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                          for t in self.settings.special_tokens()])
            self._tok.add_tokens([AddedToken(t, normalized=not special) for t, special in self.settings.added])
        self.do_lower_case = self.settings.do_lower_case
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        ids = {}
        for name in ("pad_token", "cls_token", "sep_token"):
            token = getattr(self.settings, name)
            ids[name] = self._tok.token_to_id(token)
            if ids[name] is None:
                raise UserInputError(f"the tokenizer has no {name} {token!r}")
        self.pad_id, self.cls_id, self.sep_id = ids["pad_token"], ids["cls_token"], ids["sep_token"]

    @classmethod
    def from_pretrained(cls, folder: str) -> "Tokenizer":
        """The tokenizer of a converted, exported or Hugging Face folder: ``tokenizer.json`` if
        there is one, else ``vocab.txt`` with ``tokenizer_config.json``'s options."""
        from rdrop_paddle.io.vocab import read_vocab

        settings = read_settings(folder)
        if os.path.lexists(os.path.join(folder, "tokenizer.json")):
            path = os.path.join(folder, "tokenizer.json")
            text = read_tokenizer_json(path)[0]
            try:
                backend = _library().Tokenizer.from_str(text)
            except Exception as e:  # tokenizers reports a malformed file as one of several types
                raise UserInputError(f"{path}: tokenizers cannot load it ({type(e).__name__}: {str(e)[:200]})") from None
            return cls(backend=backend, settings=settings)
        if not os.path.lexists(os.path.join(folder, "vocab.txt")):
            raise UserInputError(f"{folder}: no tokenizer.json or vocab.txt (a BERT tokenizer is needed)")
        return cls(read_vocab(os.path.join(folder, "vocab.txt")), settings=settings)

    def encode(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None,
               max_length: int = 512) -> list[tuple[list[int], list[int]]]:
        """``(ids, type_ids)`` of each text (or pair), truncated, not padded."""
        if max_length < 3 + (text_pairs is not None):
            raise UserInputError(f"max_length {max_length} leaves no room for the text")
        for i, text in enumerate(list(texts) + list(text_pairs or [])):
            check_text(text, f"text {i % len(texts) + 1}" if texts else "a text")
        self._tok.enable_truncation(max_length, strategy="longest_first", direction=self.settings.truncation_side)
        self._tok.no_padding()
        inputs = list(texts) if text_pairs is None else list(zip(texts, text_pairs))
        return [(e.ids, e.type_ids) for e in self._tok.encode_batch(inputs)]

    def __call__(self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None,
                 max_length: int = 512) -> dict[str, np.ndarray]:
        if isinstance(texts, str):
            texts, text_pairs = [texts], None if text_pairs is None else [text_pairs]
        return pad(self.encode(texts, text_pairs, max_length), self.pad_id, self.settings.padding_side)


def check_text(text: str, what: str) -> None:
    """A text the tokenizer may take: a string of valid Unicode
    (:func:`~rdrop_paddle.data.text.sources.lone_surrogate`) of at most
    :data:`~rdrop_paddle.data.text.sources.MAX_LINE_CHARS` characters."""
    from rdrop_paddle.data.text.sources import MAX_LINE_CHARS, lone_surrogate

    if not isinstance(text, str):
        raise UserInputError(f"{what} is a {type(text).__name__}, not text")
    if len(text) > MAX_LINE_CHARS:
        raise UserInputError(f"{what} is longer than {MAX_LINE_CHARS:,} characters")
    if problem := lone_surrogate(text):
        raise UserInputError(f"{what} holds {problem}; undecodable bytes?")


def pad(encoded: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int = 0,
        side: str = "right") -> dict[str, np.ndarray]:
    """Pad ``(ids, type_ids)`` pairs to the longest (dynamic padding per batch), on the right
    (BERT's default) or the left."""
    n = max((len(ids) for ids, _ in encoded), default=0)
    out = {"input_ids": np.full((len(encoded), n), pad_id, np.int64),
           "token_type_ids": np.zeros((len(encoded), n), np.int64),
           "attention_mask": np.zeros((len(encoded), n), np.int64)}
    for row, (ids, types) in enumerate(encoded):
        cols = slice(0, len(ids)) if side == "right" else slice(n - len(ids), n)
        out["input_ids"][row, cols] = ids
        out["token_type_ids"][row, cols] = types
        out["attention_mask"][row, cols] = 1
    return out
