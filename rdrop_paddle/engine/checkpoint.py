"""Checkpoints that are whole or absent, verified on resume; the best model.

Layout under ``output_dir``::

    checkpoints/step_0000200/model.pdparams   weights (a plain Paddle state dict)
                             train.pdopt      optimizer, LR schedule, GradScaler, step, best
                                              top-1 and its step, data position, config
                             model_ema.pdparams  the weights' EMA (Model.ema_decay > 0 only)
                             manifest.json    step, size and SHA-256 of each file, class names
    best.pdparams                             weights of the best evaluation (a hard link to,
                                              or copy of, that checkpoint's model.pdparams)
    best_ema.pdparams                         the same for model_ema.pdparams (EMA runs)
    .lock                                     held by the training process (:mod:`.run_lock`)

A checkpoint is written into ``checkpoints/.tmp-*``, manifest last, and renamed into
place in one step, so a crash leaves it whole or absent (the next run removes what a
killed save left behind).  Resume verifies the manifest (sizes and hashes) and falls
back to the newest complete checkpoint, with a notice.  Rotation keeps the newest
``keep`` checkpoints and the best checkpoint each of them records (the manifest names
it), so whichever one resume falls back to still finds its best weights.
"""
from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from typing import Callable, Optional

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.engine.manifest import EMA_FILE, FILES, Damaged, manifest, read, verify  # noqa: F401 (API)
from rdrop_paddle.io import atomic_write, save_paddle, sha256, write_json

_UNIT = re.compile(r"step_(\d{7,})")
_TMP = ".tmp-"  # prefix of a checkpoint folder being written
_ATOMIC_TMP = re.compile(r"\..+\.tmp-[0-9a-f]{8}")  # rdrop_paddle.io.atomic_write's temporary files


def _load(path: str, check: Callable[[str, dict, dict], None]) -> tuple[str, dict, dict]:
    """Verify, read and ``check`` checkpoint ``path``: any failure is :class:`Damaged`."""
    found = verify(path)
    try:
        weights, state = read(path, EMA_FILE in found["files"])
        check(path, weights, state)
    except ValueError as e:  # a refused pickle, or a state check (UserInputError is one)
        raise Damaged(str(e)[:300]) from None
    return path, weights, state


def _no_check(path: str, weights: dict, state: dict) -> None:
    pass


class CheckpointManager:
    """Writes, finds, verifies and rotates the checkpoints of one ``output_dir``."""

    def __init__(self, output_dir: str, keep: int, notice: Callable[[str], None] = print,
                 writable: bool = True) -> None:
        self.output_dir, self.keep, self.notice, self.writable = output_dir, keep, notice, writable
        self.dir = os.path.join(output_dir, "checkpoints")
        self.best_path = os.path.join(output_dir, "best.pdparams")
        self.best_ema_path = os.path.join(output_dir, "best_ema.pdparams")

    def path(self, step: int) -> str:
        return os.path.join(self.dir, f"step_{step:07d}")

    def steps(self) -> list[int]:
        """Steps of the checkpoint folders present (complete or not), oldest first."""
        names = os.listdir(self.dir) if os.path.isdir(self.dir) else []
        return sorted(int(m.group(1)) for m in map(_UNIT.fullmatch, names) if m)

    def save(self, step: int, weights: dict, train_state: dict, best_step: int = 0, ema: dict | None = None,
             class_names: list[str] | None = None, best_ema: bool | None = None) -> str:
        """Write checkpoint ``step`` as one unit; an existing one of that step is replaced.
        ``best_step``: the checkpoint of the best evaluation so far (kept by :meth:`rotate`);
        ``ema``: the EMA weights; ``class_names`` are recorded in the manifest."""
        final = self.path(step)
        tmp = os.path.join(self.dir, f"{_TMP}step_{step:07d}-{uuid.uuid4().hex[:8]}")
        try:
            os.makedirs(tmp)
            manifest = {"step": step, "best_step": best_step, "files": {}, "class_names": list(class_names or [])}
            if best_ema is not None:  # which weights of the best checkpoint scored best
                manifest["best_ema"] = best_ema
            objects = (weights, train_state) + ((ema,) if ema is not None else ())
            for name, obj in zip(FILES + (EMA_FILE,), objects):
                save_paddle(obj, os.path.join(tmp, name))
                file = os.path.join(tmp, name)
                manifest["files"][name] = {"bytes": os.path.getsize(file), "sha256": sha256(file)}
            write_json(manifest, os.path.join(tmp, "manifest.json"))
            if os.path.isdir(final):  # a step saved again (e.g. after falling back): keep it aside
                os.replace(final, f"{final}.replaced-{int(time.time())}")
            os.replace(tmp, final)
        except (OSError, UserInputError) as e:
            reason = e.strerror if isinstance(e, OSError) else str(e)
            raise UserInputError(f"cannot write checkpoint {final}: {reason}; earlier checkpoints "
                                 f"are intact") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def rotate(self, protect: tuple[int, ...] = ()) -> None:
        """Delete all but the newest ``keep`` checkpoints, the best checkpoint each of those
        records, and those in ``protect``."""
        steps = self.steps()
        keep = set(protect) | {self._best_step_of(s) for s in steps[-self.keep:]}
        for step in steps[:-self.keep]:
            if step not in keep:
                shutil.rmtree(self.path(step), ignore_errors=True)

    def _best_step_of(self, step: int) -> int:
        try:
            return manifest(self.path(step))["best_step"]
        except Damaged:
            return 0

    def remove_stale(self) -> list[str]:
        """Remove what a killed save left: ``checkpoints/.tmp-*`` folders and the temporary
        files of atomic writes (``.NAME.tmp-*``).  Only the run holding the lock calls this."""
        removed = []
        for folder in (self.dir, self.output_dir):
            names = os.listdir(folder) if os.path.isdir(folder) else []
            for name in names:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    continue
                if name.startswith(_TMP) and os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif _ATOMIC_TMP.fullmatch(name) and os.path.isfile(path):
                    os.remove(path)
                else:
                    continue
                removed.append(path)
        return removed

    def restore_best(self, step: int) -> bool:
        """Point ``best.pdparams`` at checkpoint ``step`` if it is not already (a crash came
        between a save and its link).  False, with a notice, if that checkpoint is gone or
        damaged: the caller then forgets the best, and the next evaluation sets a new one."""
        if self.best_is(step):
            return True
        try:
            verify(self.path(step))
        except Damaged as e:
            self.notice(f"notice: the checkpoint of the best evaluation (step {step}) is missing or "
                        f"damaged ({e}); {self.best_path} is left as it is and the next evaluation "
                        f"becomes the best")
            return False
        self.link_best(step)
        return True

    def link_best(self, step: int) -> None:
        """Make ``best.pdparams`` (and ``best_ema.pdparams``) the weights of checkpoint ``step``
        (replaced atomically)."""
        for name, target in (("model.pdparams", self.best_path), (EMA_FILE, self.best_ema_path)):
            source = os.path.join(self.path(step), name)
            if name == EMA_FILE and not os.path.isfile(source):
                continue

            def place(tmp: str, source=source) -> None:
                try:
                    os.link(source, tmp)
                except OSError:  # no hard links on this file system
                    shutil.copyfile(source, tmp)

            atomic_write(target, place)

    def best_is(self, step: int) -> bool:
        """Whether ``best.pdparams`` holds the weights of checkpoint ``step`` (the same file,
        or on file systems without hard links a copy with its manifest's hash)."""
        source = os.path.join(self.path(step), "model.pdparams")
        try:
            if os.path.samefile(self.best_path, source):
                return True
            expected = manifest(self.path(step))["files"]["model.pdparams"]["sha256"]
            return sha256(self.best_path) == expected
        except (OSError, Damaged):
            return False

    def newest_complete(self, check: Callable = _no_check) -> Optional[tuple[str, dict, dict]]:
        """``(path, weights, state)`` of the newest checkpoint that verifies, reads and passes
        ``check``; newer damaged ones are set aside with a notice."""
        steps = self.steps()
        for step in reversed(steps):
            try:
                return _load(self.path(step), check)
            except Damaged as e:
                if not self.writable:
                    continue
                aside = f"{self.path(step)}.damaged-{int(time.time())}"
                os.replace(self.path(step), aside)
                self.notice(f"notice: checkpoint step {step} is incomplete or damaged ({e}); "
                            f"moved to {aside}, resuming from an older one")
        if steps:
            raise UserInputError(f"no complete checkpoint in {self.dir} ({len(steps)} damaged, set "
                                 f"aside); move the folder away to start over")
        return None

    def has_run(self) -> bool:
        return bool(self.steps()) or os.path.exists(self.best_path)

    def resume_from(self, resume: str, check: Callable = _no_check) -> Optional[tuple[str, dict, dict]]:
        """``(path, weights, train state)`` to resume from, verified, read and passed by
        ``check(path, weights, state)`` (which raises ``ValueError`` for a state it refuses):
        ``auto`` = the newest such checkpoint here (None if this folder holds no run; damaged
        ones are set aside), a path = that checkpoint folder; "" = none."""
        if resume == "auto":
            found = self.newest_complete(check)
            if found is None and self.has_run():
                raise UserInputError(f"{self.output_dir} holds {self.best_path} but no checkpoint to "
                                     f"resume from; choose another Global.output_dir")
            return found
        if resume:
            path = os.path.dirname(resume) if os.path.isfile(resume) else resume
            if not os.path.isfile(os.path.join(path, "manifest.json")):
                raise UserInputError(f"Global.resume: {resume} is not a checkpoint folder "
                                     f"(expected .../checkpoints/step_NNNNNNN)")
            try:
                return _load(path, check)
            except Damaged as e:
                raise UserInputError(f"checkpoint {path} is damaged ({e})") from None
        if self.has_run():
            raise UserInputError(f"{self.output_dir} already holds a run; continue it with "
                                 f"-o Global.resume=auto, or choose another Global.output_dir")
        return None

    def resume_path(self, resume: str) -> Optional[str]:
        """The path :meth:`resume_from` would resume from."""
        found = self.resume_from(resume)
        return found[0] if found else None
