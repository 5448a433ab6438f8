"""One checkpoint folder's files: ``model.pdparams``, ``train.pdopt``, ``model_ema.pdparams``
(EMA runs) and ``manifest.json`` (step, size and SHA-256 of each file, class names), read
and verified without running code.  A folder that is not complete is :class:`Damaged`."""
from __future__ import annotations

import json
import os

from rdrop_paddle.io import load_paddle, sha256

FILES = ("model.pdparams", "train.pdopt")
EMA_FILE = "model_ema.pdparams"  # present in the checkpoints of runs with an EMA


class Damaged(Exception):
    """A checkpoint folder that is not complete; the message says why."""


MAX_MANIFEST = 1 << 22  # bytes; a manifest is a few hundred, plus the class names


def manifest(path: str) -> dict:
    """The manifest of checkpoint folder ``path``, its structure checked (:class:`Damaged`)."""
    try:
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
            text = fh.read(MAX_MANIFEST + 1)
        if len(text) > MAX_MANIFEST:
            raise ValueError(f"more than {MAX_MANIFEST} bytes")
        found = json.loads(text)
        files = found["files"]
        if not all(_is_count(found[k]) for k in ("step", "best_step")) or not all(
                _is_count(files[n]["bytes"]) and isinstance(files[n]["sha256"], str) for n in listed(files)):
            raise ValueError("step, best_step or a file entry is not what this package writes")
        if type(found.setdefault("best_ema", True)) is not bool:
            raise ValueError("best_ema is not true or false")
        names = found.setdefault("class_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("class_names is not a list of strings")
        return found
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise Damaged(f"manifest.json: {type(e).__name__}: {e}"[:300]) from None


def listed(files: dict) -> tuple[str, ...]:
    """The checkpoint files a manifest lists: both required ones, and the EMA if written."""
    return FILES + ((EMA_FILE,) if EMA_FILE in files else ())


def _is_count(v) -> bool:
    return type(v) is int and 0 <= v < 1 << 62


def verify(path: str) -> dict:
    """The manifest of the checkpoint folder ``path``; raises :class:`Damaged` if a file is
    missing or differs from it."""
    found = manifest(path)
    try:
        for name in listed(found["files"]):
            file = os.path.join(path, name)
            expected = found["files"][name]
            if os.path.getsize(file) != expected["bytes"] or sha256(file) != expected["sha256"]:
                raise Damaged(f"{name} differs from its manifest")
        return found
    except OSError as e:
        raise Damaged(f"{type(e).__name__}: {e}") from None


def read(path: str, ema: bool = False) -> tuple[dict, dict]:
    """``(weights, train state)`` of a checkpoint folder, as NumPy arrays, with ``ema`` the
    EMA weights as the state's ``"ema"`` (read without running code; :func:`verify` it
    first, as :meth:`CheckpointManager.resume_from` does)."""
    state = load_paddle(os.path.join(path, "train.pdopt"))
    if ema and isinstance(state, dict):
        state = {**state, "ema": load_paddle(os.path.join(path, EMA_FILE))}
    return load_paddle(os.path.join(path, "model.pdparams")), state
