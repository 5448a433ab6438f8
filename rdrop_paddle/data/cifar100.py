"""CIFAR-100 from the original ``cifar-100-python.tar.gz`` (or its extracted folder).

The archive holds pickles ``cifar-100-python/{train,test,meta}``: ``data`` is uint8
``[N, 3072]`` (RGB planes of 32x32), ``fine_labels`` a list of ints, ``meta`` has
``fine_label_names``.  They are read with the package's restricted unpickler
(:func:`rdrop_paddle.io.load_pickle`): an archive whose pickles would run code is refused.
Nothing is downloaded: a missing file is an error saying where to put it.  Transforms
are the official ``vit_src`` ones (:mod:`rdrop_paddle.data.transforms`).
"""
from __future__ import annotations

import glob
import os
import tarfile
import zlib

import numpy as np

from rdrop_paddle.data.dataset import ImageDataset
from rdrop_paddle.data.transforms import EvalTransform, TrainTransform
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_pickle

ARCHIVE = "cifar-100-python.tar.gz"
NUM_CLASSES = 100


def locate(root: str) -> str:
    """The archive or extracted folder at ``root``; a folder of data sets (such as AI Studio's
    ``/root/paddlejob/workspace/train_data/datasets``) is searched one level deep."""
    if not root or not os.path.exists(root):
        raise UserInputError(
            f"CIFAR-100 not found at {root or '(Data.root is empty)'}: put {ARCHIVE} (or its "
            f"extracted folder) there, or pass -o Data.root=PATH")
    if os.path.isfile(root) or any(os.path.isfile(os.path.join(root, p))
                                   for p in ("train", "cifar-100-python/train")):
        return root
    found = sorted(glob.glob(os.path.join(root, ARCHIVE)) + glob.glob(os.path.join(root, "*", ARCHIVE)))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} copies of"
        raise UserInputError(f"{root} holds {what} {ARCHIVE} (searched one level deep); "
                             f"pass -o Data.root=PATH to the file")
    return found[0]


def _read_member(root: str, name: str) -> tuple[bytes, str]:
    """The bytes of ``cifar-100-python/{name}`` and a name for it in messages."""
    if os.path.isdir(root):
        for path in (os.path.join(root, name), os.path.join(root, "cifar-100-python", name)):
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    return fh.read(), path
        raise UserInputError(f"CIFAR-100 folder {root} has no {name!r} file")
    member = f"cifar-100-python/{name}"
    try:
        with tarfile.open(root, "r:*") as tar:
            return tar.extractfile(member).read(), f"{root}:{member}"
    except (KeyError, AttributeError):
        raise UserInputError(f"{root}: archive has no member {member}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise UserInputError(f"{root}: not a readable tar archive, or truncated "
                             f"({type(e).__name__}: {e})") from None


def read_split(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 32, 32, 3], fine labels int64 [N])`` of ``train`` or ``test``."""
    raw, where = _read_member(root, split)
    entry = load_pickle(raw, what=where, encoding="bytes")
    try:
        data, labels = entry[b"data"], entry[b"fine_labels"]
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (KeyError, TypeError) as e:
        raise UserInputError(f"{where}: not a CIFAR-100 split (no {e})") from None
    except ValueError as e:
        raise UserInputError(f"{where}: data is not [N, 3072] uint8 ({e})") from None
    if len(images) != len(labels):
        raise UserInputError(f"{where}: {len(images)} images but {len(labels)} labels")
    return np.ascontiguousarray(images), labels


def class_names(root: str) -> list[str]:
    """``fine_label_names`` from the ``meta`` file (class indices as text if it is absent)."""
    try:
        raw, where = _read_member(root, "meta")
    except UserInputError:
        return [str(i) for i in range(NUM_CLASSES)]
    meta = load_pickle(raw, what=where, encoding="bytes")
    names = meta.get(b"fine_label_names", []) if isinstance(meta, dict) else []
    names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]
    return names if len(names) == NUM_CLASSES else [str(i) for i in range(NUM_CLASSES)]


def build_cifar100(root: str, image_size: int) -> tuple[ImageDataset, ImageDataset]:
    """Train (RandomResizedCrop, scale 0.05-1) and test (Resize) splits of the archive at ``root``."""
    root = locate(root)
    names = class_names(root)
    train = ImageDataset(*read_split(root, "train"), TrainTransform(image_size), names)
    val = ImageDataset(*read_split(root, "test"), EvalTransform(image_size), names)
    return train, val
