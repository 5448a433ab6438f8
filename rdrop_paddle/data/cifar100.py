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
MAX_MEMBER = 1 << 30  # bytes of one split file


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
            info = tar.getmember(member)
            if not info.isfile():  # a link could point anywhere, or at another link
                raise UserInputError(f"{root}: member {member} is not a regular file")
            if info.size > MAX_MEMBER:
                raise UserInputError(f"{root}: member {member} claims {info.size:,} bytes; CIFAR-100's "
                                     f"largest is 155 MB")
            return tar.extractfile(info).read(), f"{root}:{member}"
    except KeyError:
        raise UserInputError(f"{root}: archive has no member {member}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError, RecursionError) as e:
        raise UserInputError(f"{root}: not a readable tar archive, or truncated "
                             f"({type(e).__name__}: {e})") from None


def read_split(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 32, 32, 3], fine labels int64 [N])`` of ``train`` or ``test``."""
    raw, where = _read_member(root, split)
    entry = load_pickle(raw, what=where, encoding="bytes")
    if not isinstance(entry, dict) or b"data" not in entry or b"fine_labels" not in entry:
        raise UserInputError(f"{where}: not a CIFAR-100 split (no b'data' and b'fine_labels')")
    data, labels = entry[b"data"], entry[b"fine_labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserInputError(f"{where}: data is {what}, not a uint8 [N, 3072] array")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise UserInputError(f"{where}: fine_labels is not a list of integers")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise UserInputError(f"{where}: a fine label does not fit 64 bits") from None
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
    if not isinstance(names, list) or len(names) != NUM_CLASSES \
            or not all(isinstance(n, (bytes, str)) for n in names):
        return [str(i) for i in range(NUM_CLASSES)]
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def build_cifar100(root: str, image_size: int) -> tuple[ImageDataset, ImageDataset]:
    """Train (RandomResizedCrop, scale 0.05-1) and test (Resize) splits of the archive at ``root``."""
    root = locate(root)
    names = class_names(root)
    train = ImageDataset(*read_split(root, "train"), TrainTransform(image_size), names)
    val = ImageDataset(*read_split(root, "test"), EvalTransform(image_size), names)
    return train, val
