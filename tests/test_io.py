"""One restricted unpickler for every pickle, atomic writes, strict JSON."""
import json
import os
import pickle

import numpy as np
import paddle
import pytest

from helpers import Hostile
from rdrop_paddle.errors import UnsafeFileError, UserInputError
from rdrop_paddle.io import atomic_write, load_paddle, load_pickle, save_paddle, write_json


def test_paddle_state_and_optimizer_files_round_trip(tmp_path):
    """What paddle.save writes for weights and optimizer/scheduler state loads as arrays."""
    paddle.seed(0)
    layer = paddle.nn.Linear(3, 2)
    sched = paddle.optimizer.lr.LambdaDecay(0.1, lambda s: 1.0)
    opt = paddle.optimizer.AdamW(learning_rate=sched, parameters=layer.parameters())
    layer(paddle.ones([1, 3])).sum().backward()
    opt.step()
    save_paddle(layer.state_dict(), str(tmp_path / "m.pdparams"))
    save_paddle({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 7,
                 "best": 1.5, "nested": [1, (2, "x")], "none": None}, str(tmp_path / "m.pdopt"))
    weights = load_paddle(str(tmp_path / "m.pdparams"))
    assert set(weights) == {"weight", "bias"}  # paddle's own name table is dropped
    np.testing.assert_array_equal(weights["weight"], layer.weight.numpy())
    state = load_paddle(str(tmp_path / "m.pdopt"))
    reference = paddle.load(str(tmp_path / "m.pdopt"))
    assert state["step"] == 7 and state["nested"] == [1, (2, "x")] and state["none"] is None
    for key, value in reference["optimizer"].items():
        if key != "LR_Scheduler":
            np.testing.assert_array_equal(state["optimizer"][key], value.numpy())
    assert state["scheduler"] == reference["scheduler"]


@pytest.mark.parametrize("payload", ["pdparams", "nested"])
def test_hostile_pickle_is_refused_before_anything_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    obj = {"weight": Hostile(marker)} if payload == "pdparams" else {"a": [1, {"b": Hostile(marker)}]}
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(UnsafeFileError, match=r"evil.pdparams: refusing to load it: the pickle calls "
                                              r"io\.open"):
        load_paddle(str(path))
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the control: plain pickle does run it
    assert marker.exists()


def test_truncated_or_foreign_files_are_one_clear_error(tmp_path):
    good = tmp_path / "good.pdparams"
    save_paddle({"w": paddle.ones([4])}, str(good))
    cut = tmp_path / "cut.pdparams"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(UserInputError, match="cut.pdparams: not a readable file"):
        load_paddle(str(cut))
    text = tmp_path / "notes.pdparams"
    text.write_text("hello")
    with pytest.raises(UserInputError, match="notes.pdparams"):
        load_paddle(str(text))
    with pytest.raises(UserInputError, match="checkpoint not found"):
        load_paddle(str(tmp_path / "missing.pdparams"))
    with pytest.raises(UserInputError, match="does not hold a state dict"):
        (tmp_path / "list.pdparams").write_bytes(pickle.dumps([1, 2]))
        load_paddle(str(tmp_path / "list.pdparams"))


def test_python2_numpy_pickles_load(tmp_path):
    """CIFAR's split files were written by Python 2 numpy: numpy.core globals, bytes keys."""
    raw = pickle.dumps({b"data": np.arange(6, dtype=np.uint8), b"labels": [1, 2]}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # numpy 1's module
    out = load_pickle(raw, "split", encoding="bytes")
    np.testing.assert_array_equal(out[b"data"], np.arange(6))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def fail(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(str(path), fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]
    with pytest.raises(UserInputError, match="is a directory"):
        atomic_write(str(tmp_path), lambda tmp: None)


def test_json_is_strict(tmp_path):
    write_json({"top1": 1.5}, str(tmp_path / "m.json"))
    assert json.loads((tmp_path / "m.json").read_text()) == {"top1": 1.5}
    with pytest.raises(ValueError):
        write_json({"loss": float("nan")}, str(tmp_path / "bad.json"))
    assert not (tmp_path / "bad.json").exists()
