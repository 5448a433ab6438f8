"""Labelled text from files: PaddleNLP's text-classification folder, GLUE TSV, CLUE JSON lines.

- ``text_folder`` (PaddleNLP ``applications/text_classification``): ``train.txt`` and
  ``dev.txt`` of ``text<TAB>label`` lines (``text_a<TAB>text_b<TAB>label`` for pairs), the
  label a name listed in ``label.txt`` (one a line, the class order).
- ``glue``: ``train.tsv`` / ``dev.tsv`` of a GLUE task (``Data.task``), read as GLUE ships
  them (tab-separated, no quoting, a header line except for CoLA); STS-B's label is its
  ``score`` column, a float (regression).
- ``clue``: ``train.json`` / ``dev.json`` JSON lines of a CLUE task; ``labels.json`` gives the
  class names (TNEWS, IFLYTEK), else the labels are ``0`` and ``1`` (AFQMC).

A bad line (no tab, unknown label, undecodable bytes, empty text) is one error naming file
and line, or is skipped and counted with ``Data.skip_bad_lines``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import numpy as np

from rdrop_paddle.config.schema import MAX_CLASSES
from rdrop_paddle.data.entries import DataRoot, check_regular
from rdrop_paddle.data.text.glue_tasks import GLUE
from rdrop_paddle.errors import UserInputError

MAX_FILE_BYTES = 4 << 30
MAX_LINE_CHARS = 1 << 20
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS  # UTF-8: at most 4 bytes a character


CLUE = {"tnews": ("sentence", None), "iflytek": ("sentence", None), "afqmc": ("sentence1", "sentence2")}
SOURCES = ("text_folder", "glue", "clue")


@dataclasses.dataclass
class TextSplit:
    texts: list[str]
    pairs: Optional[list[str]]
    labels: np.ndarray
    skipped: list[str]  # "file:line: reason" of each line skipped


class _BadLine(Exception):
    pass


def _lines(path: str, root: DataRoot):
    """``(number, raw bytes)`` of each line of regular file ``path`` inside ``root`` (a BOM
    dropped); a line is read at most :data:`MAX_LINE_BYTES` at a time, so a file without
    line ends never comes into memory whole (its line is one ``_BadLine``)."""
    root.check(path)
    if not os.path.exists(path):
        raise UserInputError(f"{path}: no such file")
    check_regular(path)
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise UserInputError(f"{path}: larger than {MAX_FILE_BYTES >> 30} GiB")
    with open(path, "rb") as f:
        number = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass  # the rest of the long line, skipped in bounded pieces
                yield number, None
                continue
            raw = raw.rstrip(b"\r\n")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield number, raw


def _decode(raw) -> str:
    if raw is None:
        raise _BadLine(f"longer than {MAX_LINE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _BadLine(f"undecodable bytes at column {e.start + 1} (not UTF-8)") from None
    if len(text) > MAX_LINE_CHARS:
        raise _BadLine(f"longer than {MAX_LINE_CHARS:,} characters")
    return text


def lone_surrogate(text: str) -> str:
    """What makes ``text`` invalid Unicode (a lone surrogate, as a JSON ``\\ud800`` escape or an
    undecodable command-line byte gives), or "" for valid text; the tokenizer cannot take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"a lone surrogate {text[e.start]!r} at character {e.start + 1} (not valid Unicode)"
    return ""


def _check_text(text: str) -> None:
    if problem := lone_surrogate(text):
        raise _BadLine(problem)


def _read(path: str, parse, skip_bad: bool, root: DataRoot, dtype=np.int64) -> TextSplit:
    """Apply ``parse(number, raw) -> (text, pair, label) | None`` to each line of ``path``;
    labels are class indices (``int64``) or scores (``float32``)."""
    texts, pairs, labels, skipped = [], [], [], []
    for number, raw in _lines(path, root):
        try:
            row = parse(number, raw)
            if row is None:
                continue
            text, pair, label = row
            if not text.strip() or (pair is not None and not pair.strip()):
                raise _BadLine("empty text")
            for t in (text, pair):
                if t is not None:
                    _check_text(t)
        except _BadLine as e:
            if not skip_bad:
                raise UserInputError(f"{path}:{number}: {e} (Data.skip_bad_lines: true skips such lines)") from None
            skipped.append(f"{path}:{number}: {e}")
            continue
        texts.append(text)
        pairs.append(pair)
        labels.append(label)
    has_pairs = any(p is not None for p in pairs)
    if has_pairs and any(p is None for p in pairs):
        raise UserInputError(f"{path}: some lines are sentence pairs, others single sentences")
    return TextSplit(texts, pairs if has_pairs else None, np.asarray(labels, dtype), skipped)


def _index(classes: dict, label: str) -> int:
    if label not in classes:
        raise _BadLine(f"label {label[:40]!r} is not one of the classes ({', '.join(list(classes)[:8])}"
                       f"{', ...' if len(classes) > 8 else ''})")
    return classes[label]


def _score(label: str) -> float:
    """A regression target: a finite number (STS-B's similarity, 0 to 5)."""
    try:
        value = float(label)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or abs(value) > 1e30:
        raise _BadLine(f"score {label[:40]!r} is not a finite number")
    return value


def _class_list(path: str, root: DataRoot) -> list[str]:
    names, seen = [], set()
    for number, raw in _lines(path, root):
        try:
            name = _decode(raw).strip()
            _check_text(name)
        except _BadLine as e:
            raise UserInputError(f"{path}:{number}: {e}") from None
        if name in seen:
            raise UserInputError(f"{path}:{number}: label {name[:80]!r} is listed twice")
        if name:
            names.append(name)
            seen.add(name)
        if len(names) > MAX_CLASSES:
            raise UserInputError(f"{path}: lists more than {MAX_CLASSES:,} labels (Model.num_classes' bound)")
    if not names:
        raise UserInputError(f"{path}: lists no labels")
    return names


def text_folder(root: str, skip_bad: bool, allow_outside: bool = False) -> tuple[TextSplit, TextSplit, list[str]]:
    """PaddleNLP's folder: ``label.txt``, ``train.txt``, ``dev.txt``."""
    inside = DataRoot(root, allow_outside)
    names = _class_list(os.path.join(root, "label.txt"), inside)
    classes = {n: i for i, n in enumerate(names)}

    def parse(_, raw):
        cells = _decode(raw).split("\t")
        if len(cells) not in (2, 3):
            raise _BadLine(f"{len(cells) - 1} tabs; expected text<TAB>label or text_a<TAB>text_b<TAB>label")
        return cells[0], cells[1] if len(cells) == 3 else None, _index(classes, cells[-1].strip())

    return (*(_read(os.path.join(root, f), parse, skip_bad, inside) for f in ("train.txt", "dev.txt")), names)


def glue(root: str, task: str, skip_bad: bool, allow_outside: bool = False) -> tuple[TextSplit, TextSplit, list[str]]:
    """A GLUE task's ``train.tsv`` and dev file."""
    inside = DataRoot(root, allow_outside)
    if task not in GLUE:
        raise UserInputError(f"Data.task {task!r} is not a GLUE task ({', '.join(GLUE)})")
    spec = GLUE[task]
    classes = {n: i for i, n in enumerate(spec.labels)}

    def read(name: str) -> TextSplit:
        path, columns = os.path.join(root, name), {}

        def column(cells, key):
            i = columns[key] if spec.header else key
            if i >= len(cells):
                raise _BadLine(f"{len(cells)} columns; the {task} layout needs column {i + 1} ({key})")
            return cells[i]

        def parse(number, raw):
            cells = _decode(raw).split("\t")
            if spec.header and not columns:
                wanted = [k for k in (spec.text_a, spec.text_b, spec.label) if k is not None]
                missing = [k for k in wanted if k not in cells]
                if missing:
                    raise UserInputError(f"{path}:{number}: the header has no column {missing[0]!r}; is this "
                                         f"the {task} task's file?")
                columns.update({k: cells.index(k) for k in wanted})
                return None
            pair = column(cells, spec.text_b) if spec.text_b is not None else None
            label = column(cells, spec.label).strip()
            return column(cells, spec.text_a), pair, _score(label) if spec.regression else _index(classes, label)

        return _read(path, parse, skip_bad, inside, np.float32 if spec.regression else np.int64)

    return read("train.tsv"), read(spec.dev), list(spec.labels)


def clue(root: str, task: str, skip_bad: bool, allow_outside: bool = False) -> tuple[TextSplit, TextSplit, list[str]]:
    """A CLUE task's ``train.json`` and ``dev.json`` (JSON lines)."""
    if task not in CLUE:
        raise UserInputError(f"Data.task {task!r} is not a CLUE classification task ({', '.join(CLUE)})")
    inside = DataRoot(root, allow_outside)
    keys, (ids, names) = CLUE[task], _clue_classes(root, inside)

    def parse(_, raw):
        obj = _json(raw)
        values = [obj.get(k) if k else None for k in (*keys, "label")]
        if not isinstance(values[0], str) or (keys[1] and not isinstance(values[1], str)):
            raise _BadLine(f"no text field {' and '.join(k for k in keys if k)!r}")
        return values[0], values[1], _index(ids, str(values[2]))

    return (*(_read(os.path.join(root, f), parse, skip_bad, inside) for f in ("train.json", "dev.json")), names)


def _clue_classes(root: str, inside: DataRoot) -> tuple[dict, list[str]]:
    """Label ids to class indices, and class names: ``labels.json`` (``label``, ``label_desc``
    or ``label_des`` per line), else ``0`` and ``1``."""
    listing = os.path.join(root, "labels.json")
    if not os.path.lexists(listing):
        return {"0": 0, "1": 1}, ["0", "1"]
    ids: dict = {}
    names: list[str] = []
    for number, raw in _lines(listing, inside):
        try:
            label, desc = _json_label(raw)
        except _BadLine as e:
            raise UserInputError(f"{listing}:{number}: {e}") from None
        if label in ids:
            raise UserInputError(f"{listing}:{number}: label {label[:80]!r} is listed twice")
        ids[label] = len(names)
        names.append(desc)
        if len(names) > MAX_CLASSES:
            raise UserInputError(f"{listing}: lists more than {MAX_CLASSES:,} labels (Model.num_classes' bound)")
    if not names:
        raise UserInputError(f"{listing}: lists no labels")
    return ids, names


def text_class_names(name: str, root: str, task: str, allow_outside: bool = False) -> list[str]:
    """The class names of text source ``name`` without reading its data."""
    inside = DataRoot(root, allow_outside)
    if name == "text_folder":
        return _class_list(os.path.join(root, "label.txt"), inside)
    if name == "glue" and task.lower() in GLUE:
        return list(GLUE[task.lower()].labels)
    if name == "clue" and task.lower() in CLUE:
        return _clue_classes(root, inside)[1]
    raise UserInputError(f"Data.task {task!r} is not a {name} task")


def _json(raw: bytes) -> dict:
    try:
        obj = json.loads(_decode(raw))
    except (ValueError, RecursionError) as e:
        raise _BadLine(f"not a JSON object ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise _BadLine("not a JSON object")
    return obj


def _json_label(raw: bytes):
    obj = _json(raw)
    desc = obj.get("label_desc", obj.get("label_des"))
    if not isinstance(obj.get("label"), (str, int)) or isinstance(obj.get("label"), bool):
        raise _BadLine("no label field")
    name = desc if isinstance(desc, str) else str(obj["label"])
    _check_text(name)
    return str(obj["label"]), name
