"""scikit-learn's handwritten digits (1797 real 8x8 grey-scale images, shipped in the package).

The held-out split is a fixed permutation drawn from ``split_seed``, so it does not move
when the training seed changes.  Pixels (0..16) become 8-bit grey levels
(``round(v * 255 / 16)``), so that a digit saved as a PNG file reads back exactly; the
model input is then made as for any image (ToTensor, Normalize(0.5, 0.5)), without
augmentation.
"""
from __future__ import annotations

import numpy as np

from rdrop_paddle.data.dataset import ImageDataset
from rdrop_paddle.data.transforms import EvalTransform

CLASS_NAMES = [str(i) for i in range(10)]


def load_digits_split(val_fraction: float, split_seed: int) -> dict:
    """Return ``{'train': (x, y), 'val': (x, y)}`` with x uint8 ``[N, 8, 8]``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    order = np.random.RandomState(split_seed).permutation(len(labels))
    n_val = int(round(len(labels) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return {"train": (images[train], labels[train]), "val": (images[val], labels[val])}


def build_digits(val_fraction: float, split_seed: int) -> tuple[ImageDataset, ImageDataset]:
    split, transform = load_digits_split(val_fraction, split_seed), EvalTransform(8)
    return (ImageDataset(*split["train"], transform, CLASS_NAMES),
            ImageDataset(*split["val"], transform, CLASS_NAMES))
