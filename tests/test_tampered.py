"""Checkpoints tampered with and re-hashed, and weights in another precision (issue 29.1,
29.4, 29.5): a state that resume could not use is damaged, so resume falls back to the
previous checkpoint with a notice; floating-point weights of another precision are cast."""
import json

import numpy as np
import pytest

from helpers import one_error_line, run_tool, train_ok
from rdrop_paddle.engine import checkpoint
from rdrop_paddle.io import save_paddle, sha256
from test_pickle_fuzz import CRASHING_PICKLES

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

QUICK = ["-c", "configs/quickstart.yaml"]


def _run(out, steps):
    return train_ok(*QUICK, "-o", f"Global.output_dir={out}", "-o", f"Global.max_steps={steps}",
                    "-o", "Global.save_every=2", "-o", "Global.eval_every=1000", "-o", "Global.log_every=2")


def _rehash(folder, name, raw=None):
    """Replace ``name`` in checkpoint ``folder`` (by bytes, or already written) and update
    the manifest so that its hash check passes: only the content is wrong."""
    if raw is not None:
        (folder / name).write_bytes(raw)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": (folder / name).stat().st_size, "sha256": sha256(str(folder / name))}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    _run(out, 4)
    return out


def _copy(run4, tmp_path):
    import shutil

    shutil.copytree(run4, tmp_path / "run")
    return tmp_path / "run", tmp_path / "run" / "checkpoints" / "step_0000004"


def _first_moment(opt):
    return next(k for k in opt if k.endswith("_moment1_0"))


STATE_DAMAGE = {
    "step 19.5": lambda s: s["progress"].update(step=19.5),
    "step -5": lambda s: s["progress"].update(step=-5),
    "step numpy float": lambda s: s["progress"].update(step=np.float64(4)),
    "best_step 10.5": lambda s: s["progress"].update(best_step=10.5),
    "best_top1 NaN": lambda s: s["progress"].update(best_top1=float("nan")),
    "scheduler without last_epoch": lambda s: s["scheduler"].pop("last_epoch"),
    "scheduler as a list": lambda s: s.update(scheduler=[4, 0.001]),
    "last_epoch text": lambda s: s["scheduler"].update(last_epoch="x"),
    "moment missing": lambda s: s["optimizer"].pop(_first_moment(s["optimizer"])),
    "moment of the wrong shape": lambda s: s["optimizer"].update({_first_moment(s["optimizer"]): np.zeros(3, np.float32)}),
    "moment of integers": lambda s: s["optimizer"].update(
        {_first_moment(s["optimizer"]): s["optimizer"][_first_moment(s["optimizer"])].astype(np.int32)}),
    "text beta1_pow": lambda s: s["optimizer"].update(
        {next(k for k in s["optimizer"] if "beta1_pow" in k): np.array(["x"])}),
    "every AdamW moment gone": lambda s: [s["optimizer"].pop(k) for k in list(s["optimizer"]) if "_moment" in k],
}
MANIFEST_DAMAGE = {
    "200,000 nested brackets": "[" * 200_000 + "]" * 200_000,
    "best_step 1e999": None,
}


@pytest.mark.parametrize("case", [*STATE_DAMAGE, *MANIFEST_DAMAGE, "crashing pickle as model.pdparams",
                                  "integer weights", "NaN weights"])
def test_a_tampered_checkpoint_is_damaged_and_resume_falls_back(run4, tmp_path, case):
    out, newest = _copy(run4, tmp_path)
    if case in STATE_DAMAGE:
        weights, state = checkpoint.read(str(newest))
        STATE_DAMAGE[case](state)
        save_paddle(state, str(newest / "train.pdopt"))
        _rehash(newest, "train.pdopt")
    elif case == "200,000 nested brackets":
        (newest / "manifest.json").write_text(MANIFEST_DAMAGE[case])
    elif case == "best_step 1e999":
        text = (newest / "manifest.json").read_text()
        assert '"best_step": 4' in text
        (newest / "manifest.json").write_text(text.replace('"best_step": 4', '"best_step": 1e999'))
    elif case in ("integer weights", "NaN weights"):
        weights, _ = checkpoint.read(str(newest))
        save_paddle({k: v.astype(np.int64) if case == "integer weights" else v * np.nan for k, v in weights.items()},
                    str(newest / "model.pdparams"))
        _rehash(newest, "model.pdparams")
    else:
        _rehash(newest, "model.pdparams", CRASHING_PICKLES[0])
    _run(out, 6)
    log = (out / "train.log").read_text()
    assert "checkpoint step 4 is incomplete or damaged" in log and "resume at step 2" in log, log[-2000:]
    assert checkpoint.CheckpointManager(str(out), 3).steps()[-1] == 6


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_weights_in_another_precision_are_cast_with_a_notice_everywhere(run4, tmp_path, dtype):
    out, newest = _copy(run4, tmp_path)
    weights, _ = checkpoint.read(str(newest))
    save_paddle({k: v.astype(dtype) for k, v in weights.items()}, str(newest / "model.pdparams"))
    _rehash(newest, "model.pdparams")
    _run(out, 6)
    log = (out / "train.log").read_text()
    assert "resume at step 4" in log and f"arrays cast from {dtype} to float32" in log
    other = tmp_path / f"w_{dtype}.pdparams"
    save_paddle({k: v.astype(dtype) for k, v in weights.items()}, str(other))
    for tool, extra in (("tools/eval.py", []), ("tools/export_model.py", ["--out", tmp_path / "exp"]),
                        ("tools/train.py", ["-o", f"Global.output_dir={tmp_path / 'new'}", "-o", "Global.max_steps=2"]),
                        ("tools/convert_weights.py", None)):
        if extra is None:
            res = run_tool(tool, "--src", other, "--model", "vit_nano_patch4_8", "--num-classes", "10",
                           "--image-size", "8", "--out", tmp_path / "converted.pdparams")
        else:
            res = run_tool(tool, *QUICK, "-o", f"Model.pretrained={other}", *extra)
        assert res.returncode == 0, (tool, res.stderr[-2000:])
        assert f"cast from {dtype} to float32" in res.stdout, (tool, res.stdout[-2000:])


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex64", "<U2", "datetime64[s]"])
def test_weights_that_are_not_floating_point_are_one_line_naming_the_key(run4, tmp_path, dtype):
    weights, _ = checkpoint.read(str(run4 / "checkpoints" / "step_0000004"))
    weights["head.bias"] = weights["head.bias"].astype(np.int64).astype(dtype)
    path = tmp_path / "w.pdparams"
    save_paddle(weights, str(path))
    for tool, extra in (("tools/eval.py", []), ("tools/export_model.py", ["--out", tmp_path / "exp"])):
        line = one_error_line(run_tool(tool, *QUICK, "-o", f"Model.pretrained={path}", *extra))
        assert "head.bias holds" in line and "not floating-point weights" in line, line
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("case", ["NaN EMA", "EMA file gone"])
def test_a_damaged_ema_is_damage_and_resume_falls_back(tmp_path, case):
    """Issue 35.4: an all-NaN model_ema.pdparams (re-hashed) resumed silently and every later
    EMA was NaN; a checkpoint without its EMA file ended with a bare 'ema'."""
    out = tmp_path / "run"
    ema = ["-o", "Model.ema_decay=0.9"]
    train_ok(*QUICK, *ema, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=4", "-o", "Global.save_every=2",
             "-o", "Global.eval_every=1000")
    newest = out / "checkpoints" / "step_0000004"
    if case == "NaN EMA":
        weights, _ = checkpoint.read(str(newest))
        save_paddle({k: v * np.nan for k, v in weights.items()}, str(newest / checkpoint.EMA_FILE))
        _rehash(newest, checkpoint.EMA_FILE)
    else:
        (newest / checkpoint.EMA_FILE).unlink()
        manifest = json.loads((newest / "manifest.json").read_text())
        del manifest["files"][checkpoint.EMA_FILE]
        (newest / "manifest.json").write_text(json.dumps(manifest))
    train_ok(*QUICK, *ema, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=6", "-o", "Global.save_every=2",
             "-o", "Global.eval_every=1000")
    log = (out / "train.log").read_text()
    assert "checkpoint step 4 is incomplete or damaged" in log and "resume at step 2" in log, log[-2000:]
    assert ("model_ema.pdparams" in log) and ("NaN" in log if case == "NaN EMA" else "kept an EMA" in log)
    from helpers import newest_weights

    assert all(np.isfinite(v).all() for v in newest_weights(out, ema=True).values())
