"""Checkpoint units: whole or absent, verified, fallen back from, rotated; the best link; the run lock."""
import errno
import os

import numpy as np
import paddle
import pytest

from rdrop_paddle.engine import checkpoint
from rdrop_paddle.engine.checkpoint import CheckpointManager
from rdrop_paddle.engine.run_lock import RunLock
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import sha256


def _save(mgr, step, value=None):
    weights = {"w": paddle.full([3], float(step if value is None else value))}
    return mgr.save(step, weights, {"progress": {"step": step}})


def _manager(tmp_path, keep=2, notices=None):
    return CheckpointManager(str(tmp_path), keep, notice=(notices.append if notices is not None else print))


def test_a_saved_checkpoint_verifies_and_reads_back(tmp_path):
    mgr = _manager(tmp_path)
    path = _save(mgr, 5)
    assert sorted(os.listdir(path)) == ["manifest.json", "model.pdparams", "train.pdopt"]
    weights, state = checkpoint.read(path)
    np.testing.assert_array_equal(weights["w"], [5, 5, 5])
    assert state["progress"]["step"] == 5 and checkpoint.verify(path)["step"] == 5
    assert not [n for n in os.listdir(mgr.dir) if n.startswith(".tmp")]


def test_a_killed_write_leaves_nothing_that_resume_would_use(tmp_path):
    mgr = _manager(tmp_path)
    _save(mgr, 10)
    partial = os.path.join(mgr.dir, ".tmp-step_0000020-deadbeef")  # killed before its rename
    os.makedirs(partial)
    with open(os.path.join(partial, "model.pdparams"), "wb") as fh:
        fh.write(b"half")
    assert mgr.steps() == [10] and mgr.resume_path("auto") == mgr.path(10)


def test_resume_falls_back_from_a_damaged_newest_checkpoint(tmp_path):
    notices = []
    mgr = _manager(tmp_path, keep=3, notices=notices)
    for step in (10, 20, 30):
        _save(mgr, step)
    model = os.path.join(mgr.path(30), "model.pdparams")
    with open(model, "r+b") as fh:
        fh.truncate(os.path.getsize(model) - 10)
    os.remove(os.path.join(mgr.path(20), "manifest.json"))
    assert mgr.resume_path("auto") == mgr.path(10)
    assert len(notices) == 2 and "step 30 is incomplete or damaged (model.pdparams differs" in notices[0]
    assert mgr.steps() == [10] and len([n for n in os.listdir(mgr.dir) if ".damaged-" in n]) == 2
    _save(mgr, 20, value=7)  # the resumed run writes its own step 20
    np.testing.assert_array_equal(checkpoint.read(mgr.path(20))[0]["w"], [7, 7, 7])


def test_no_complete_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    mgr = _manager(tmp_path)
    _save(mgr, 10)
    os.remove(os.path.join(mgr.path(10), "train.pdopt"))
    with pytest.raises(UserInputError, match="no complete checkpoint in .*move the folder away"):
        mgr.resume_path("auto")


def test_an_existing_run_is_never_restarted_silently(tmp_path):
    mgr = _manager(tmp_path)
    assert mgr.resume_path("auto") is None and mgr.resume_path("") is None
    _save(mgr, 10)
    with pytest.raises(UserInputError, match="already holds a run; continue it with -o Global.resume=auto"):
        mgr.resume_path("")
    only_best = _manager(tmp_path / "b")
    os.makedirs(only_best.output_dir)
    open(only_best.best_path, "wb").close()
    with pytest.raises(UserInputError, match="holds .*best.pdparams but no checkpoint to resume from"):
        only_best.resume_path("auto")
    with pytest.raises(UserInputError, match="is not a checkpoint folder"):
        mgr.resume_path(str(tmp_path / "nowhere"))
    assert mgr.resume_path(os.path.join(mgr.path(10), "train.pdopt")) == mgr.path(10)
    with open(os.path.join(mgr.path(10), "train.pdopt"), "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(UserInputError, match="step_0000010 is damaged \\(train.pdopt differs"):
        mgr.resume_path(mgr.path(10))


def test_rotation_keeps_the_newest_and_the_best(tmp_path):
    mgr = _manager(tmp_path, keep=2)
    for step in (10, 20, 30, 40):
        _save(mgr, step)
        mgr.rotate(protect=(20,))
    assert mgr.steps() == [20, 30, 40]
    mgr.link_best(20)
    assert mgr.best_is(20) and not mgr.best_is(40)
    assert sha256(mgr.best_path) == checkpoint.verify(mgr.path(20))["files"]["model.pdparams"]["sha256"]


def test_rotation_keeps_the_best_that_each_kept_checkpoint_records(tmp_path):
    mgr = _manager(tmp_path, keep=2)
    for step, best in ((10, 10), (20, 20), (30, 20), (40, 40), (50, 40)):
        mgr.save(step, {"w": paddle.ones([1])}, {}, best_step=best)
        mgr.rotate(protect=(best,))
    assert mgr.steps() == [40, 50]
    mgr.save(60, {"w": paddle.ones([1])}, {}, best_step=60)
    mgr.rotate(protect=(60,))
    assert mgr.steps() == [40, 50, 60]  # step 50, a fallback, records best 40


def test_a_missing_best_checkpoint_is_a_notice(tmp_path):
    notices = []
    mgr = _manager(tmp_path, notices=notices)
    for step in (10, 20):
        mgr.save(step, {"w": paddle.full([1], float(step))}, {}, best_step=10)
    assert mgr.restore_best(10) and mgr.best_is(10)  # a crash between a save and its link
    import shutil

    shutil.rmtree(mgr.path(10))
    assert not mgr.restore_best(10)
    assert "the checkpoint of the best evaluation (step 10) is missing or damaged" in notices[-1]


def test_stale_temporary_files_are_removed(tmp_path):
    mgr = _manager(tmp_path)
    _save(mgr, 10)
    stale = [os.path.join(mgr.dir, ".tmp-step_0000020-0123abcd"), os.path.join(mgr.dir, ".tmp-x"),
             os.path.join(str(tmp_path), ".best.pdparams.tmp-89abcdef")]
    os.makedirs(stale[0])
    os.makedirs(stale[1])
    open(stale[2], "wb").close()
    open(os.path.join(str(tmp_path), "notes.tmp-1"), "wb").close()  # not ours: kept
    assert sorted(mgr.remove_stale()) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "notes.tmp-1"] and mgr.steps() == [10]


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    mgr = _manager(tmp_path)
    _save(mgr, 10)

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_paddle", full)
    with pytest.raises(UserInputError, match="cannot write checkpoint .*step_0000020: No space left on device; "
                                             "earlier checkpoints are intact"):
        _save(mgr, 20)
    assert mgr.steps() == [10] and checkpoint.verify(mgr.path(10))
    assert [n for n in os.listdir(mgr.dir)] == ["step_0000010"]


def test_one_run_per_output_dir(tmp_path):
    lock = RunLock(str(tmp_path))
    with pytest.raises(UserInputError, match=f"is in use by another training run \\(pid {os.getpid()}\\)"):
        RunLock(str(tmp_path))
    lock.release()
    RunLock(str(tmp_path)).release()


def test_an_unwritable_output_dir_is_one_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(UserInputError, match="cannot write to .*: Permission denied"):
        RunLock(str(tmp_path))
