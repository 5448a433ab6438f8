"""``Data.name: folder``: the ImageNet / timm / HF ``imagefolder`` layout.

    root/train/<class>/<image>    (any depth below the class folder)
    root/val/<class>/<image>      optional; without it ``train/`` is split by
                                  ``Data.val_fraction`` and ``Data.split_seed``, per class

Class names are the folder names of ``train/``, sorted; class ``i`` is the ``i``-th name.
Hidden entries (dot-files, ``__MACOSX``) and files without an image extension are skipped and
named in the first log line; images are regular files inside ``Data.root``
(:mod:`~rdrop_paddle.data.entries`).  Only paths are listed here:
images are read when a sample is asked for (:class:`~rdrop_paddle.data.files.FileDataset`).
"""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.data.decode import IMAGE_EXTENSIONS, is_image_file
from rdrop_paddle.data.entries import DataRoot, check_regular, hidden
from rdrop_paddle.errors import UserInputError


def _class_folders(split_dir: str) -> tuple[list[str], list[str]]:
    """The class folders of ``split_dir`` (sorted) and the other entries beside them."""
    try:
        entries = sorted(os.scandir(split_dir), key=lambda e: e.name)
        return ([e.name for e in entries if not hidden(e.name) and e.is_dir()],
                [os.path.join(split_dir, e.name) for e in entries if hidden(e.name) or not e.is_dir()])
    except OSError as e:
        raise UserInputError(f"cannot list {split_dir}: {e.strerror or e}") from None


def _files(folder: str, root: DataRoot) -> tuple[list[str], list[str]]:
    """Image files below ``folder`` (sorted, at any depth) and the entries skipped."""
    found, skipped = [], []
    for parent, dirs, names in os.walk(folder, onerror=None):
        skipped += [os.path.join(parent, d) for d in dirs if hidden(d)]
        dirs[:] = sorted(d for d in dirs if not hidden(d))
        for name in sorted(names):
            path = os.path.join(parent, name)
            if hidden(name) or not is_image_file(name):
                skipped.append(path)
                continue
            check_regular(path)
            root.check(path)
            found.append(path)
    return found, skipped


def scan(root: str, split: str, classes: list[str] | None = None,
         allow_outside: bool = False) -> tuple[list[str], list[int], list[str], list[str]]:
    """``(paths, labels, class names, skipped entries)`` of ``root/split``; with ``classes``
    (the training classes) every folder must be one of them."""
    split_dir = os.path.join(root, split)
    inside = DataRoot(root, allow_outside)
    names, skipped = _class_folders(split_dir)
    if not names:
        raise UserInputError(f"{split_dir}: no class folders (expected {split_dir}/<class>/<image>)")
    if classes is not None:
        extra = [n for n in names if n not in classes]
        if extra:
            raise UserInputError(f"{os.path.join(split_dir, extra[0])}: class {extra[0]!r} is in {split}/ "
                                 f"but not in train/ ({len(extra)} such classes)")
    index = {n: i for i, n in enumerate(classes if classes is not None else names)}
    paths, labels = [], []
    for name in names:
        files, other = _files(os.path.join(split_dir, name), inside)
        if not files and split == "train":
            raise UserInputError(f"{os.path.join(split_dir, name)}: class folder holds no image "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
        paths += files
        labels += [index[name]] * len(files)
        skipped += other
    return paths, labels, (classes if classes is not None else names), skipped


def stratified_split(labels: list[int], val_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, val indices)``: ``round(n * val_fraction)`` of each class's ``n`` files
    (at most ``n - 1``) to validation, drawn from ``(split_seed, class)``."""
    labels = np.asarray(labels)
    train, val = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.random.default_rng([split_seed, int(c)]).permutation(len(members))]
        n_val = min(int(round(len(members) * val_fraction)), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def folder_splits(root: str, val_fraction: float, split_seed: int, allow_outside: bool = False) -> dict:
    """``{'train': (paths, labels), 'val': (paths, labels), 'classes': names, 'skipped': paths}``."""
    if not root:
        raise UserInputError("Data.name folder needs Data.root (the folder holding train/ and val/)")
    if not os.path.isdir(os.path.join(root, "train")):
        raise UserInputError(f"{os.path.join(root, 'train')}: folder not found (Data.name folder expects "
                             f"Data.root/train/<class>/<image>)")
    paths, labels, classes, skipped = scan(root, "train", allow_outside=allow_outside)
    if os.path.isdir(os.path.join(root, "val")):
        val_paths, val_labels, _, val_skipped = scan(root, "val", classes, allow_outside)
        return {"train": (paths, labels), "val": (val_paths, val_labels), "classes": classes,
                "skipped": skipped + val_skipped}
    train, val = stratified_split(labels, val_fraction, split_seed)
    return {"train": ([paths[i] for i in train], [labels[i] for i in train]),
            "val": ([paths[i] for i in val], [labels[i] for i in val]), "classes": classes, "skipped": skipped}
