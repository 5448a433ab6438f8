"""Fault paths of the tools: resume from the states a long run reaches, refused inputs that
write nothing, deployment files that are damaged or tampered with, Ctrl-C and repeated signals."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import ROOT, default_signals, make_cifar100, one_error_line, run_tool, train_ok
from rdrop_paddle.engine import checkpoint
from rdrop_paddle.errors import UnsafeFileError
from rdrop_paddle.io import load_paddle, load_pickle

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

QUICK = ["-c", "configs/quickstart.yaml"]


def _steps(out):
    return checkpoint.CheckpointManager(str(out), 1).steps()


def test_resume_falls_back_past_a_damaged_newest_checkpoint_after_rotation(tmp_path):
    """Issue 20.1: the fallback's best checkpoint had been rotated away; resume got stuck."""
    out = tmp_path / "run"
    cycle = ["-o", f"Global.output_dir={out}", "-o", "Global.save_every=20", "-o", "Global.eval_every=30"]
    train_ok(*QUICK, *cycle, "-o", "Global.max_steps=60")
    assert _steps(out) == [30, 40, 60]  # 30: the best that step 40 records, kept by rotation
    os.truncate(out / "checkpoints" / "step_0000060" / "model.pdparams", 1000)
    res = train_ok(*QUICK, *cycle, "-o", "Global.max_steps=80")
    assert "resume at step 40" in res.stdout and "moved to" in res.stdout
    mgr = checkpoint.CheckpointManager(str(out), 2)
    best = json.loads((out / "checkpoints" / "step_0000080" / "manifest.json").read_text())["best_step"]
    assert _steps(out)[-1] == 80 and mgr.best_is(best)
    load_paddle(str(out / "best.pdparams"))  # whole, not the truncated file it was linked to


def test_a_killed_save_leaves_nothing_after_the_next_run(tmp_path):
    out = tmp_path / "run"
    train_ok(*QUICK, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=2")
    stale = [out / "checkpoints" / ".tmp-step_0000004-0123abcd", out / ".best.pdparams.tmp-89abcdef"]
    stale[0].mkdir()
    (stale[0] / "model.pdparams").write_bytes(b"half")
    stale[1].write_bytes(b"half")
    res = train_ok(*QUICK, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=4")
    assert "removed the temporary files of a save that was interrupted" in res.stdout
    assert not any(p.exists() for p in stale) and _steps(out)[-1] == 4


@pytest.mark.parametrize("overrides,message", [
    (["Model.num_classes=1000000000"], "Model.num_classes must be at most 100,000"),
    (["Model.image_size=1000000"], "Model.image_size must be at most 4,096"),
    (["Data.val_fraction=0.0001"], "the digits validation split is empty"),
    (["Model.pretrained=/nonexistent/w.pdparams"], "checkpoint not found: /nonexistent/w.pdparams"),
    (["Model.name=vit_huge_patch14_224"], "unknown model 'vit_huge_patch14_224'"),
    (["Data.name=cifar100", "Data.root=/nonexistent/cifar"], "CIFAR-100 not found at /nonexistent/cifar"),
    (["Data.name=cifar100", "Model.num_classes=100"],
     "samples are [3, 8, 8] (channels, height, width) but vit_nano_patch4_8 takes [1, 8, 8]"),
])
def test_a_refused_run_creates_nothing(tmp_path, overrides, message):
    make_cifar100(tmp_path / "c.tar.gz", n_train=8, n_test=4)
    out = tmp_path / "out" / "run"
    args = [x for o in [f"Global.output_dir={out}", f"Data.root={tmp_path / 'c.tar.gz'}", *overrides] for x in ("-o", o)]
    assert message in one_error_line(run_tool("tools/train.py", *QUICK, "-o", "Global.max_steps=2", *args))
    assert not (tmp_path / "out").exists()


def test_eval_refuses_an_empty_validation_split(tmp_path):
    train_ok(*QUICK, "-o", f"Global.output_dir={tmp_path}", "-o", "Global.max_steps=2")
    res = run_tool("tools/eval.py", *QUICK, "-o", f"Global.output_dir={tmp_path}", "-o", "Data.val_fraction=0.0001")
    assert "validation split is empty" in one_error_line(res)
    assert not (tmp_path / "metrics.json").exists()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    train_ok(*QUICK, "-o", f"Global.output_dir={root / 'run'}", "-o", "Global.max_steps=2")
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Global.output_dir={root / 'run'}", "--out", root / "exp")
    assert res.returncode == 0, res.stderr[-2000:]
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "digit.png")
    return root


def _infer(model_dir, image):
    return run_tool("tools/infer.py", "--model-dir", model_dir, "--images", image, "--out", f"{model_dir}.json")


@pytest.mark.parametrize("damage,message", [
    ({"image_size": "8"}, "image_size '8' is not an integer"),
    ({"image_size": -8}, "image_size -8 is not an integer"),
    ({"mean": [0.5, 0.5]}, "mean is not a list of 1 finite numbers"),
    ({"std": [0.0]}, "std has a value <= 0"),
    ("inference.json", "the exported model cannot be loaded"),
    ("inference.pdiparams", "the exported model cannot be loaded"),
])
def test_damaged_exports_are_one_error(exported, tmp_path, damage, message):
    import shutil

    model_dir = tmp_path / "exp"
    shutil.copytree(exported / "exp", model_dir)
    if isinstance(damage, dict):
        cfg = json.loads((model_dir / "infer_cfg.json").read_text())
        (model_dir / "infer_cfg.json").write_text(json.dumps({**cfg, **damage}))
    else:
        raw = (model_dir / damage).read_bytes()
        (model_dir / damage).write_bytes(raw[:len(raw) // 3])
    res = _infer(model_dir, exported / "digit.png")
    assert message in one_error_line(res)
    assert not os.path.exists(f"{model_dir}.json")


def test_a_decompression_bomb_is_refused(exported, tmp_path):
    from PIL import Image

    Image.new("L", (20000, 20000)).save(tmp_path / "huge.png")
    assert "could be decompression bomb" in one_error_line(_infer(exported / "exp", tmp_path / "huge.png"))


def test_non_finite_models_are_neither_exported_nor_reported(exported, tmp_path):
    import paddle

    weights = load_paddle(str(exported / "run" / "best.pdparams"))
    weights["head.bias"][:] = np.nan
    paddle.save({k: paddle.to_tensor(v) for k, v in weights.items()}, str(tmp_path / "nan.pdparams"))
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Model.pretrained={tmp_path / 'nan.pdparams'}",
                   "--out", tmp_path / "exp")
    assert "the weights hold NaN or infinity: refusing to export them" in one_error_line(res)
    assert not (tmp_path / "exp").exists()
    # an export made elsewhere: the predictor reports its non-finite logits
    from rdrop_paddle.models import build_model

    model = build_model("vit_nano_patch4_8", num_classes=10)
    model.set_state_dict(weights)
    model.eval()
    spec = [paddle.static.InputSpec([None, 1, 8, 8], "float32", "x")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), str(tmp_path / "nan_exp" / "model"))
    (tmp_path / "nan_exp" / "infer_cfg.json").write_bytes((exported / "exp" / "infer_cfg.json").read_bytes())
    assert "the model gives non-finite logits" in one_error_line(_infer(tmp_path / "nan_exp", exported / "digit.png"))
    (tmp_path / "file").write_text("x")
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Global.output_dir={exported / 'run'}", "--out", tmp_path / "file")
    assert "is a file, not a folder" in one_error_line(res)


def test_a_refusal_names_the_real_global():
    import subprocess as sp

    for protocol in (2, 4):
        class Call:
            def __reduce__(self):
                return (sp.call, (["true"],))

        with pytest.raises(UnsafeFileError, match=r"the pickle calls subprocess\.call,"):
            load_pickle(pickle.dumps(Call(), protocol=protocol))


def _start(out, *extra):
    cmd = [sys.executable, f"{ROOT}/tools/train.py", *QUICK, "-o", f"Global.output_dir={out}",
           "-o", "Global.max_steps=100000", "-o", "Global.log_every=5", "-o", "Global.eval_every=100000", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)  # SIGINT as a terminal leaves it, even under `pytest &`


def _wait_for_step(out, step, timeout=120):
    deadline = time.time() + timeout
    log = out / "train.log"
    while time.time() < deadline and not (log.exists() and f"step {step}/" in log.read_text()):
        time.sleep(0.02)


@pytest.mark.parametrize("extra_delay", [0.0, 0.013, 0.031])
def test_ctrl_c_saves_at_the_next_step_and_exits_130(tmp_path, extra_delay):
    """Before: a KeyboardInterrupt raised inside the custom backward, a traceback, nothing saved."""
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_step(out, 5)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    saved = [line for line in stdout.splitlines() if "SIGINT: saved step" in line]
    assert len(saved) == 1 and "done:" not in stdout
    step = int(saved[0].split("saved step ")[1].split()[0])
    assert checkpoint.verify(str(out / "checkpoints" / f"step_{step:07d}"))["step"] == step


def test_a_second_ctrl_c_exits_at_once_and_a_second_sigterm_changes_nothing(tmp_path):
    out = tmp_path / "int"
    proc = _start(out, "-o", "Global.eval_every=7")
    _wait_for_step(out, 5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    res = train_ok(*QUICK, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=12",
                   "-o", "Global.eval_every=7")  # whatever the second Ctrl-C interrupted, resume works
    assert _steps(out)[-1] == 12 and not [n for n in os.listdir(out / "checkpoints") if n.startswith(".tmp")]
    for gap in (0.05, 0.3):
        out = tmp_path / f"term{gap}"
        proc = _start(out)
        _wait_for_step(out, 5)
        proc.send_signal(signal.SIGTERM)
        time.sleep(gap)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "SIGTERM: saved step" in stdout, (gap, proc.returncode, stderr[-2000:])
