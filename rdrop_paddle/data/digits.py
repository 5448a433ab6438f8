"""scikit-learn's handwritten digits (1797 real 8x8 grey-scale images, shipped in the package).

The held-out split is a fixed permutation drawn from ``split_seed``, so it does
not move when the training seed changes.  Pixels (0..16) are scaled to [0, 1]
and normalised with mean 0.5, std 0.5, as the CIFAR-100 recipe does.
"""
from __future__ import annotations

import numpy as np
from paddle.io import Dataset


def load_digits_split(val_fraction: float, split_seed: int) -> dict:
    """Return ``{'train': (x, y), 'val': (x, y)}`` with x float32 ``[N, 1, 8, 8]``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    labels = digits.target.astype(np.int64)
    order = np.random.RandomState(split_seed).permutation(len(labels))
    n_val = int(round(len(labels) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return {"train": (images[train, None], labels[train]),
            "val": (images[val, None], labels[val])}


class ArrayDataset(Dataset):
    """Images and labels held in memory as NumPy arrays."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int):
        return self.images[idx], self.labels[idx]
