"""CIFAR-100 from the original ``cifar-100-python.tar.gz`` (or its extracted folder).

The archive holds pickles ``cifar-100-python/{train,test,meta}``: ``data`` is uint8
``[N, 3072]`` (RGB planes of 32x32), ``fine_labels`` a list of ints, ``meta`` has
``fine_label_names``.  They are read with the package's restricted unpickler
(:func:`rdrop_paddle.io.load_pickle`): an archive whose pickles would run code is refused.
An empty ``Data.root`` finds or downloads the archive in the data home (:func:`locate`).  Transforms
are the official ``vit_src`` ones (:mod:`rdrop_paddle.data.transforms`).
"""
from __future__ import annotations

import bz2
import glob
import gzip
import io
import lzma
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
MAX_UNPACKED = 256 << 20  # bytes the archive may unpack to (CIFAR-100's: 186 MB)
MAX_MEMBERS = 100  # members of the archive (CIFAR-100's: 5)


AI_STUDIO_DATASETS = "/root/paddlejob/workspace/train_data/datasets"  # where a script task mounts data sets


def locate(root: str) -> str:
    """The archive or extracted folder at ``root``; a folder of data sets (such as AI Studio's
    ``/root/paddlejob/workspace/train_data/datasets``) is searched one level deep.  An empty
    ``root`` looks in the data home (``$RDROP_DATA_HOME``; else AI Studio's data sets folder where
    it exists, then ``~/.cache/rdrop_paddle``) and downloads the archive there if it is in none
    (:mod:`~rdrop_paddle.data.download`)."""
    if not root:
        from rdrop_paddle.data.download import CIFAR100, data_home, download

        homes = [data_home()] if os.environ.get("RDROP_DATA_HOME") else [AI_STUDIO_DATASETS, data_home()]
        for home in homes:
            found = _search(home)
            if len(found) == 1:
                return found[0]
        return download(CIFAR100, ARCHIVE)
    if not os.path.exists(root):
        raise UserInputError(
            f"CIFAR-100 not found at {root}: put {ARCHIVE} (or its extracted folder) there, pass "
            f"-o Data.root=PATH, or -o Data.root= (empty) to download it into the data home")
    if os.path.isfile(root) or any(os.path.isfile(os.path.join(root, p))
                                   for p in ("train", "cifar-100-python/train")):
        return root
    found = _search(root)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} copies of"
        raise UserInputError(f"{root} holds {what} {ARCHIVE} (searched one level deep); "
                             f"pass -o Data.root=PATH to the file")
    return found[0]


def _search(folder: str) -> list[str]:
    """``ARCHIVE`` in ``folder`` or one level down (an unreadable folder holds none)."""
    if not os.path.isdir(folder):
        return []
    return sorted(glob.glob(os.path.join(folder, ARCHIVE)) + glob.glob(os.path.join(folder, "*", ARCHIVE)))


class _Bounded(io.RawIOBase):
    """A decompressing stream that refuses to yield more than ``limit`` bytes: an archive
    that inflates to gigabytes is refused once the bound is reached, not read to its end."""

    def __init__(self, stream, limit: int, where: str) -> None:
        self.stream, self.left, self.where = stream, limit, where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise UserInputError(f"{self.where}: unpacks to more than {MAX_UNPACKED:,} bytes; CIFAR-100's "
                                 f"archive unpacks to 186 MB")
        buffer[:len(data)] = data
        return len(data)


def _decompressed(fh, where: str):
    """``fh`` (an open archive) decompressed by its magic bytes: gzip, bz2, xz or plain tar."""
    magic = fh.read(6)
    fh.seek(0)
    for prefix, module in ((b"\x1f\x8b", gzip), (b"BZh", bz2), (b"\xfd7zXZ\x00", lzma)):
        if magic.startswith(prefix):
            return _Bounded(module.open(fh), MAX_UNPACKED, where)
    return _Bounded(fh, MAX_UNPACKED, where)


def _read_members(root: str, names: tuple[str, ...]) -> dict[str, tuple[bytes, str]]:
    """``{name: (bytes, where)}`` of ``cifar-100-python/{name}`` for each of ``names`` found: the
    archive is read once, as a stream, within :data:`MAX_UNPACKED` bytes and
    :data:`MAX_MEMBERS` members; only regular files are read."""
    if os.path.isdir(root):
        found = {}
        for name in names:
            for path in (os.path.join(root, name), os.path.join(root, "cifar-100-python", name)):
                if os.path.isfile(path):
                    with open(path, "rb") as fh:
                        found[name] = (fh.read(MAX_MEMBER + 1), path)
                    break
        return found
    wanted, found = {f"cifar-100-python/{n}": n for n in names}, {}
    try:
        with open(root, "rb") as fh, tarfile.open(fileobj=_decompressed(fh, root), mode="r|") as tar:
            for count, info in enumerate(tar, 1):
                if count > MAX_MEMBERS:
                    raise UserInputError(f"{root}: more than {MAX_MEMBERS} members; CIFAR-100's archive has 5")
                if info.name not in wanted:
                    continue
                if not info.isfile():  # a link could point anywhere, or at another link
                    raise UserInputError(f"{root}: member {info.name} is not a regular file")
                if info.size > MAX_MEMBER:
                    raise UserInputError(f"{root}: member {info.name} claims {info.size:,} bytes; CIFAR-100's "
                                         f"largest is 155 MB")
                found[wanted[info.name]] = (tar.extractfile(info).read(), f"{root}:{info.name}")
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, zlib.error, OSError, lzma.LZMAError, RecursionError) as e:
        raise UserInputError(f"{root}: not a readable tar archive, or truncated "
                             f"({type(e).__name__}: {e})") from None
    return found


def _member(found: dict, root: str, name: str) -> tuple[bytes, str]:
    if name not in found:
        what = "folder" if os.path.isdir(root) else "archive"
        raise UserInputError(f"CIFAR-100 {what} {root} has no member cifar-100-python/{name}")
    return found[name]


def read_split(root: str, split: str, found: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 32, 32, 3], fine labels int64 [N])`` of ``train`` or ``test``
    (``found``: what :func:`_read_members` already read)."""
    raw, where = _member(found if found is not None else _read_members(root, (split,)), root, split)
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


def class_names(root: str, found: dict | None = None) -> list[str]:
    """``fine_label_names`` from the ``meta`` file (class indices as text if it is absent)."""
    found = found if found is not None else _read_members(root, ("meta",))
    if "meta" not in found:
        return [str(i) for i in range(NUM_CLASSES)]
    raw, where = found["meta"]
    meta = load_pickle(raw, what=where, encoding="bytes")
    names = meta.get(b"fine_label_names", []) if isinstance(meta, dict) else []
    if not isinstance(names, list) or len(names) != NUM_CLASSES \
            or not all(isinstance(n, (bytes, str)) for n in names):
        return [str(i) for i in range(NUM_CLASSES)]
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def build_cifar100(root: str, image_size: int, train_transform=None,
                   eval_transform=None) -> tuple[ImageDataset, ImageDataset]:
    """Train and test splits of the archive at ``root``; transforms default to the official
    ones (RandomResizedCrop, scale 0.05-1; Resize)."""
    root = locate(root)
    found = _read_members(root, ("train", "test", "meta"))  # one pass over the archive
    names = class_names(root, found)
    train = ImageDataset(*read_split(root, "train", found), train_transform or TrainTransform(image_size), names)
    val = ImageDataset(*read_split(root, "test", found), eval_transform or EvalTransform(image_size), names)
    return train, val
