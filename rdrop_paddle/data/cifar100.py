"""CIFAR-100 from the original ``cifar-100-python.tar.gz`` (or its extracted folder).

The archive holds pickles ``cifar-100-python/{train,test}`` whose ``data`` is
uint8 ``[N, 3072]`` (RGB planes of 32x32) and ``fine_labels`` a list of ints.
Nothing is downloaded: a missing file is an error saying where to put it.
Transforms are the official ``vit_src`` ones: train RandomResizedCrop(scale
0.05-1.0), test Resize, both then Normalize(mean 0.5, std 0.5); no flip.
"""
from __future__ import annotations

import glob
import os
import pickle
import tarfile

import numpy as np
from paddle.io import Dataset
from paddle.vision import transforms as T
from PIL import Image

from rdrop_paddle.errors import UserInputError

SPLITS = {"train": "train", "val": "test"}


ARCHIVE = "cifar-100-python.tar.gz"


def locate(root: str) -> str:
    """The archive or extracted folder at ``root``; a folder of data sets (such as AI Studio's
    ``/root/paddlejob/workspace/train_data/datasets``) is searched one level deep."""
    if not os.path.exists(root):
        raise UserInputError(
            f"CIFAR-100 not found at {root}: put {ARCHIVE} (or its extracted folder) there, "
            f"or pass -o Data.root=PATH")
    if os.path.isfile(root) or any(os.path.isfile(os.path.join(root, p))
                                   for p in ("train", "cifar-100-python/train")):
        return root
    found = sorted(glob.glob(os.path.join(root, ARCHIVE)) + glob.glob(os.path.join(root, "*", ARCHIVE)))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} copies of"
        raise UserInputError(f"{root} holds {what} {ARCHIVE} (searched one level deep); "
                             f"pass -o Data.root=PATH to the file")
    return found[0]


def _read_split(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    name = f"cifar-100-python/{split}"
    if os.path.isdir(root):
        path = os.path.join(root, split)
        if not os.path.isfile(path):
            path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise UserInputError(f"CIFAR-100 folder {root} has no {split!r} pickle")
        with open(path, "rb") as fh:
            raw = fh.read()
    else:
        try:
            with tarfile.open(root, "r:*") as tar:
                raw = tar.extractfile(name).read()
        except (KeyError, AttributeError):
            raise UserInputError(f"{root}: archive has no member {name}") from None
        except tarfile.TarError as e:
            raise UserInputError(f"{root}: not a readable tar archive ({e})") from None
    entry = pickle.loads(raw, encoding="bytes")
    try:
        data, labels = entry[b"data"], entry[b"fine_labels"]
    except KeyError as e:
        raise UserInputError(f"{root}: {split} pickle lacks key {e.args[0]!r}") from None
    images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, dtype=np.int64)


class CIFAR100(Dataset):
    """One split of CIFAR-100 as HWC uint8 images decoded in memory."""

    def __init__(self, root: str, split: str, transform) -> None:
        super().__init__()
        self.images, self.labels = _read_split(locate(root), SPLITS[split])
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int):
        return self.transform(Image.fromarray(self.images[idx])), self.labels[idx]


def build_cifar100(root: str, image_size: int) -> tuple[CIFAR100, CIFAR100]:
    normalize = [T.ToTensor(), T.Normalize(mean=[0.5] * 3, std=[0.5] * 3)]
    train_tf = T.Compose([T.RandomResizedCrop(image_size, scale=(0.05, 1.0))] + normalize)
    val_tf = T.Compose([T.Resize((image_size, image_size))] + normalize)
    return CIFAR100(root, "train", train_tf), CIFAR100(root, "val", val_tf)
