"""One in-memory image data set class for every source (digits, CIFAR-100)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from paddle.io import Dataset
from PIL import Image

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import digest


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Every label must be a class index in ``[0, num_classes)`` (scores, float labels of a
    regression set, are checked by their reader)."""
    if labels.dtype.kind == "f":
        return
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise UserInputError(f"{source}: label {int(labels[bad[0]])} at index {int(bad[0])} is not a "
                             f"class in [0, {num_classes}) ({bad.size} such labels); check "
                             f"Model.num_classes and the data")


class ImageDataset(Dataset):
    """Images and integer labels held in memory.

    ``dataset[i]`` gives ``(input, label)`` with the input as float32 NumPy.  With a
    ``transform(image, rng)`` the images are uint8 HWC arrays turned into PIL images first;
    ``dataset[(i, seed)]`` draws that sample's augmentation from ``seed`` (the training
    sampler passes one seed per sample position), ``dataset[i]`` from a fixed seed.
    Without a transform the images are returned as they are.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Optional[Callable] = None,
                 class_names: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)
        self.transform, self.class_names = transform, list(class_names or [])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, 0)
        image, label = self.images[index], self.labels[index]
        if self.transform is not None:
            image = self.transform(Image.fromarray(image), np.random.default_rng(seed))
        return image, label

    def sample_digest(self, n: int = 64) -> str:
        """A digest of the pixels of ``n`` evenly spaced samples: ranks compare it with the
        labels' digest, so two nodes whose images differ do not train together silently."""
        index = np.unique(np.linspace(0, len(self) - 1, num=min(n, len(self))).astype(np.int64))
        return digest({str(i): np.asarray(self.images[i]) for i in index})
