"""``Data.name: filelist``: PaddleClas's file lists.

``Data.train_list`` and ``Data.val_list`` hold one ``relative/path label`` line per image
(space- or tab-separated, the label last, the path relative to ``Data.root``; blank lines
skipped).  ``Data.label_list`` (PaddleClas's ``class_id_map_file``) optionally names the
classes with ``id name`` lines (split at the first tab if there is one, else at the first
spaces), ids ``0 .. K-1`` each once; without it the classes are ``0 .. max label`` of the
training list, named by their ids.  Lists may start with a UTF-8 byte-order mark and end lines
with CRLF (Windows tools); ids and labels are ASCII digits.  Every image is a regular file
inside ``Data.root`` unless ``Data.allow_outside_root`` (:mod:`~rdrop_paddle.data.entries`).
"""
from __future__ import annotations

import itertools
import os
import re

from rdrop_paddle.config.schema import MAX_CLASSES
from rdrop_paddle.data.entries import DataRoot, check_regular
from rdrop_paddle.errors import UserInputError

MAX_LINE = 4096  # characters: a path and a label
_LABEL = re.compile(r"-?[0-9]+")


def _lines(path: str, key: str):
    """``(line number, text)`` of the non-blank lines of list file ``path`` (config key ``key``)."""
    if not path:
        raise UserInputError(f"Data.name filelist needs {key}")
    try:
        with open(path, encoding="utf-8-sig") as fh:
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
        first, _, name = line.partition("\t") if "\t" in line else line.partition(" ")
        first = first.strip()
        if not (_LABEL.fullmatch(first) and first[0] != "-"):
            raise UserInputError(f"{path}:{number}: expected 'id name' with an id of digits, got {line[:80]!r}")
        cid = int(first)
        if cid >= MAX_CLASSES:
            raise UserInputError(f"{path}:{number}: class id {cid} is {MAX_CLASSES} or more")
        if cid in names:
            raise UserInputError(f"{path}:{number}: class id {cid} is listed twice")
        names[cid] = name.strip() or first
    missing = sorted(set(range(len(names))) - set(names))
    if not names or missing:
        raise UserInputError(f"{path}: class ids must be 0..{len(names) - 1} each once"
                             + (f"; {missing[0]} is missing" if missing else "; the file lists none"))
    return [names[i] for i in range(len(names))]


def read_file_list(path: str, key: str, root: str, num_classes: int | None,
                   allow_outside: bool = False) -> tuple[list[str], list[int]]:
    """``(paths, labels)`` of list file ``path``; every file must be an image file inside
    ``root`` (unless ``allow_outside``) and every label below ``num_classes`` (or
    :data:`~rdrop_paddle.config.MAX_CLASSES` without a label list)."""
    paths, labels, inside = [], [], DataRoot(root, allow_outside)
    for number, line in _lines(path, key):
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not _LABEL.fullmatch(parts[1]):
            raise UserInputError(f"{path}:{number}: expected 'relative/path label', got {line[:80]!r}")
        file, label = os.path.join(root, parts[0].strip()), int(parts[1])
        bound = num_classes if num_classes is not None else MAX_CLASSES
        if not 0 <= label < bound:
            raise UserInputError(f"{path}:{number}: label {label} is not a class id [0, {bound})")
        check_regular(file, f"{path}:{number}: ")
        inside.check(file, f"{path}:{number}: ")
        paths.append(file)
        labels.append(label)
    if not paths:
        raise UserInputError(f"{key} {path}: lists no image")
    return paths, labels


def filelist_splits(root: str, train_list: str, val_list: str, label_list: str, allow_outside: bool = False) -> dict:
    """``{'train': (paths, labels), 'val': (paths, labels), 'classes': names, 'skipped': []}``."""
    names = read_label_list(label_list) if label_list else None
    train = read_file_list(train_list, "Data.train_list", root, len(names) if names else None, allow_outside)
    if names is None:
        names = [str(i) for i in range(max(train[1]) + 1)]
    val = read_file_list(val_list, "Data.val_list", root, len(names), allow_outside)
    return {"train": train, "val": val, "classes": names, "skipped": []}
