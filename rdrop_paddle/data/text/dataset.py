"""Tokenised text held in memory, batched with dynamic padding; ``build_text_datasets``."""
from __future__ import annotations

import os

import numpy as np
from paddle.io import Dataset

from rdrop_paddle.data.text.sources import SOURCES, clue, glue, text_folder
from rdrop_paddle.data.text.tokenizer import Tokenizer, pad
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import digest


class TextDataset(Dataset):
    """``dataset[i]`` (or ``dataset[(i, seed)]``) is ``((ids, type_ids), label)``; ``collate``
    pads a batch to its longest sequence: ``({input_ids, token_type_ids, attention_mask}, labels)``.
    Labels are class indices (``int64``) or, for regression, scores (``float32``)."""

    def __init__(self, encoded: list, labels: np.ndarray, class_names: list[str], pad_id: int = 0,
                 padding_side: str = "right") -> None:
        super().__init__()
        self.encoded, self.labels = encoded, np.asarray(labels)
        if self.labels.dtype.kind != "f":
            self.labels = self.labels.astype(np.int64)
        self.class_names, self.pad_id, self.padding_side = list(class_names), pad_id, padding_side
        self.skipped_files: list[str] = []
        self.skipped_lines: list[str] = []  # "file:line: reason" of the lines Data.skip_bad_lines skipped

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, tuple) else key
        return self.encoded[index], self.labels[index]

    def collate(self, items: list) -> tuple[dict, np.ndarray]:
        return (pad([item[0] for item in items], self.pad_id, self.padding_side),
                np.asarray([item[1] for item in items], self.labels.dtype))

    def sample_digest(self, n: int = 64) -> str:
        """A digest of the token ids of ``n`` evenly spaced samples (ranks compare it)."""
        index = np.unique(np.linspace(0, len(self) - 1, num=min(n, len(self))).astype(np.int64))
        return digest({str(i): np.asarray(self.encoded[i][0] + self.encoded[i][1]) for i in index})

    def standin(self, batch: int) -> tuple[dict, np.ndarray]:
        """A batch of ``[CLS] [SEP]`` sequences: what a rank whose data failed steps on."""
        cls_sep = ([self.encoded[0][0][0], self.encoded[0][0][-1]], [0, 0]) if len(self) else ([0, 0], [0, 0])
        return pad([cls_sep] * batch, self.pad_id, self.padding_side), np.zeros([batch], self.labels.dtype)


def read_splits(name: str, root: str, task: str, skip_bad: bool, allow_outside: bool = False):
    """``(train, dev, class names)`` of text source ``name`` (``Data.name``); every file inside
    ``root`` unless ``allow_outside``."""
    if name == "text_folder":
        return text_folder(root, skip_bad, allow_outside)
    if name == "glue":
        return glue(root, task.lower(), skip_bad, allow_outside)
    if name == "clue":
        return clue(root, task.lower(), skip_bad, allow_outside)
    raise UserInputError(f"Data.name {name!r} is not a text source ({', '.join(SOURCES)})")


def build_text_datasets(name: str, root: str, task: str, tokenizer: Tokenizer, max_seq_len: int,
                        skip_bad: bool = False, allow_outside: bool = False) -> tuple[TextDataset, TextDataset]:
    """The (train, dev) :class:`TextDataset` of a text source, tokenised to ``max_seq_len``."""
    if not root or not os.path.isdir(root):
        raise UserInputError(f"Data.root {root!r} is not a folder (Data.name {name})")
    train, dev, names = read_splits(name, root, task, skip_bad, allow_outside)
    sets = []
    for split in (train, dev):
        ds = TextDataset(tokenizer.encode(split.texts, split.pairs, max_seq_len), split.labels, names,
                         tokenizer.pad_id, tokenizer.settings.padding_side)  # as inference pads
        ds.skipped_lines = split.skipped
        sets.append(ds)
    return sets[0], sets[1]
