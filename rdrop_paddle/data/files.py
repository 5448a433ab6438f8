"""An image data set read lazily from files: only paths and labels are held in memory.

Each ``dataset[(index, seed)]`` decodes one file in the DataLoader worker that asks for it
(:func:`~rdrop_paddle.data.decode.read_image`: bounded, converted to the model's channels)
and applies the transform with that sample's generator, as
:class:`~rdrop_paddle.data.dataset.ImageDataset` does for images held in memory.

A file that cannot be decoded stops the run with one line naming it (the loader reports it
to every rank), unless ``skip_bad`` is set: then the sample is replaced by another one
drawn from ``(seed, index)`` (the same on every card, worker count and resume), and the
sample comes with the unreadable paths as a third item, which the loader counts.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np
from paddle.io import Dataset

from rdrop_paddle.data.decode import read_image
from rdrop_paddle.errors import UserInputError

MAX_REPLACEMENTS = 20  # tries before a run of unreadable files is an error after all


class FileDataset(Dataset):
    """Image files and integer labels.

    Args:
        paths: image files (absolute, or relative to the working folder).
        labels: class index of each file.
        transform: ``transform(image, rng)`` giving a float32 CHW array.
        class_names: names of the classes, by index.
        in_chans: 1 (grey-scale model) or 3 (RGB).
        skip_bad: replace an unreadable file instead of failing.
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: Callable,
                 class_names: Sequence[str], in_chans: int = 3, skip_bad: bool = False) -> None:
        super().__init__()
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} files but {len(labels)} labels")
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform, self.class_names = transform, list(class_names)
        self.in_chans, self.skip_bad = in_chans, skip_bad

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, 0)
        first, bad = index, []
        for attempt in range(MAX_REPLACEMENTS + 1):
            try:
                image = read_image(self.paths[index], self.in_chans)
                break
            except UserInputError:
                if not self.skip_bad or attempt == MAX_REPLACEMENTS:
                    raise
                bad.append(self.paths[index])
                draw = np.random.default_rng([*np.atleast_1d(seed).tolist(), first, attempt])
                index = int(draw.integers(len(self)))
        sample = self.transform(image, np.random.default_rng(seed)), self.labels[index]
        return (*sample, bad) if bad else sample

    def sample_digest(self, n: int = 64) -> str:
        """A digest of the bytes of ``n`` evenly spaced files (ranks compare it: two nodes whose
        files differ do not train together silently)."""
        h = hashlib.sha256()
        for i in np.unique(np.linspace(0, len(self) - 1, num=min(n, len(self))).astype(np.int64)):
            h.update(self.paths[i].encode("utf-8", "surrogateescape"))
            try:
                with open(self.paths[i], "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            except OSError as e:
                raise UserInputError(f"{self.paths[i]}: cannot read ({e.strerror or e})") from None
        return h.hexdigest()
