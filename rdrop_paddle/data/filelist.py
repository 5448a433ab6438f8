"""``Data.name: filelist``: PaddleClas's file lists.

``Data.train_list`` and ``Data.val_list`` hold one ``relative/path label`` line per image
(space- or tab-separated, the label last, the path relative to ``Data.root``; blank lines
skipped).  ``Data.label_list`` (PaddleClas's ``class_id_map_file``) optionally names the
classes with ``id name`` lines, ids ``0 .. K-1`` each once; without it the classes are
``0 .. max label`` of the training list, named by their ids.
"""
from __future__ import annotations

import itertools
import os

from rdrop_paddle.errors import UserInputError

MAX_LINE = 4096  # characters: a path and a label


def _lines(path: str, key: str):
    """``(line number, text)`` of the non-blank lines of list file ``path`` (config key ``key``)."""
    if not path:
        raise UserInputError(f"Data.name filelist needs {key}")
    try:
        with open(path, encoding="utf-8") as fh:
            for number in itertools.count(1):
                line = fh.readline(MAX_LINE + 1)  # bounded: a file of one huge line is not read whole
                if not line:
                    return
                if len(line) > MAX_LINE:
                    raise UserInputError(f"{path}:{number}: line longer than {MAX_LINE} characters")
                if line.strip():
                    yield number, line.strip()
    except FileNotFoundError:
        raise UserInputError(f"{key} {path}: file not found") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserInputError(f"{key} {path}: cannot read ({e.strerror or e})") from None


def read_label_list(path: str) -> list[str]:
    """Class names from ``id name`` lines (ids 0..K-1, each once)."""
    names: dict[int, str] = {}
    for number, line in _lines(path, "Data.label_list"):
        first, _, name = line.partition(" ") if " " in line else line.partition("\t")
        if not first.isdigit():
            raise UserInputError(f"{path}:{number}: expected 'id name', got {line[:80]!r}")
        cid = int(first)
        if cid in names:
            raise UserInputError(f"{path}:{number}: class id {cid} is listed twice")
        names[cid] = name.strip() or first
    missing = sorted(set(range(len(names))) - set(names))
    if not names or missing:
        raise UserInputError(f"{path}: class ids must be 0..{len(names) - 1} each once"
                             + (f"; {missing[0]} is missing" if missing else "; the file lists none"))
    return [names[i] for i in range(len(names))]


def read_file_list(path: str, key: str, root: str, num_classes: int | None) -> tuple[list[str], list[int]]:
    """``(paths, labels)`` of list file ``path``; every file must exist and, with
    ``num_classes``, every label be below it."""
    paths, labels = [], []
    for number, line in _lines(path, key):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise UserInputError(f"{path}:{number}: expected 'relative/path label', got {line[:80]!r}")
        file, label = os.path.join(root, parts[0].strip()), int(parts[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise UserInputError(f"{path}:{number}: label {label} is not a class id {bound}")
        if not os.path.isfile(file):
            raise UserInputError(f"{path}:{number}: image not found: {file}")
        paths.append(file)
        labels.append(label)
    if not paths:
        raise UserInputError(f"{key} {path}: lists no image")
    return paths, labels


def filelist_splits(root: str, train_list: str, val_list: str, label_list: str) -> dict:
    """``{'train': (paths, labels), 'val': (paths, labels), 'classes': names, 'skipped': 0}``."""
    names = read_label_list(label_list) if label_list else None
    train = read_file_list(train_list, "Data.train_list", root, len(names) if names else None)
    if names is None:
        names = [str(i) for i in range(max(train[1]) + 1)]
    val = read_file_list(val_list, "Data.val_list", root, len(names))
    return {"train": train, "val": val, "classes": names, "skipped": 0}
