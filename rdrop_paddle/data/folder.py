"""``Data.name: folder``: the ImageNet / timm / HF ``imagefolder`` layout.

    root/train/<class>/<image>    (any depth below the class folder)
    root/val/<class>/<image>      optional; without it ``train/`` is split by
                                  ``Data.val_fraction`` and ``Data.split_seed``, per class

Class names are the folder names of ``train/``, sorted; class ``i`` is the ``i``-th name.
Files without an image extension are skipped and counted.  Only paths are listed here:
images are read when a sample is asked for (:class:`~rdrop_paddle.data.files.FileDataset`).
"""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.data.decode import IMAGE_EXTENSIONS, is_image_file
from rdrop_paddle.errors import UserInputError


def _class_folders(split_dir: str) -> tuple[list[str], int]:
    """The class folders of ``split_dir`` (sorted) and the number of files beside them."""
    try:
        entries = [e for e in os.scandir(split_dir) if not e.name.startswith(".")]
        return sorted(e.name for e in entries if e.is_dir()), sum(1 for e in entries if not e.is_dir())
    except OSError as e:
        raise UserInputError(f"cannot list {split_dir}: {e.strerror or e}") from None


def _files(folder: str) -> tuple[list[str], int]:
    """Image files below ``folder`` (sorted, at any depth) and the number of other files."""
    found, skipped = [], 0
    for parent, dirs, names in os.walk(folder, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if is_image_file(name):
                found.append(os.path.join(parent, name))
            elif not name.startswith("."):
                skipped += 1
    return found, skipped


def scan(root: str, split: str, classes: list[str] | None = None) -> tuple[list[str], list[int], list[str], int]:
    """``(paths, labels, class names, skipped files)`` of ``root/split``; with ``classes`` (the
    training classes) every folder must be one of them."""
    split_dir = os.path.join(root, split)
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
        files, other = _files(os.path.join(split_dir, name))
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


def folder_splits(root: str, val_fraction: float, split_seed: int) -> dict:
    """``{'train': (paths, labels), 'val': (paths, labels), 'classes': names, 'skipped': n}``."""
    if not root:
        raise UserInputError("Data.name folder needs Data.root (the folder holding train/ and val/)")
    if not os.path.isdir(os.path.join(root, "train")):
        raise UserInputError(f"{os.path.join(root, 'train')}: folder not found (Data.name folder expects "
                             f"Data.root/train/<class>/<image>)")
    paths, labels, classes, skipped = scan(root, "train")
    if os.path.isdir(os.path.join(root, "val")):
        val_paths, val_labels, _, val_skipped = scan(root, "val", classes)
        return {"train": (paths, labels), "val": (val_paths, val_labels), "classes": classes,
                "skipped": skipped + val_skipped}
    train, val = stratified_split(labels, val_fraction, split_seed)
    return {"train": ([paths[i] for i in train], [labels[i] for i in train]),
            "val": ([paths[i] for i in val], [labels[i] for i in val]), "classes": classes, "skipped": skipped}
