"""The training tool over time: exact resume after SIGTERM, accumulation, divergence, 2-rank eval."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from helpers import ROOT, run_tool, train_ok
from rdrop_paddle.config import load_config
from rdrop_paddle.engine.builders import batch_plan
from rdrop_paddle.errors import UserInputError

BASE = ["-c", "configs/quickstart.yaml", "-o", "Global.log_every=5", "-o", "Global.eval_every=1000"]


def _params(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def _train(out, *extra, launch=0, log_dir=None):
    return train_ok(*BASE, "-o", f"Global.output_dir={out}", *extra, launch=launch, log_dir=log_dir)


def test_sigterm_then_resume_is_bit_identical(tmp_path):
    steps = ["-o", "Global.max_steps=120", "-o", "Global.save_every=1000"]
    _train(tmp_path / "full", *steps)

    out = tmp_path / "cut"
    cmd = [sys.executable, f"{ROOT}/tools/train.py", *BASE, "-o", f"Global.output_dir={out}", *steps]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "train.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "step 10/" in log.read_text()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    saved = [l for l in log.read_text().splitlines() if "SIGTERM: saved step" in l]
    assert saved, "the run finished before SIGTERM arrived"
    cut_at = int(saved[0].split("saved step ")[1].split()[0])
    assert 10 <= cut_at < 120

    _train(out, *steps)  # the config says resume: auto
    assert f"resume at step {cut_at}" in log.read_text()
    full, resumed = _params(tmp_path / "full" / "latest.pdparams"), _params(out / "latest.pdparams")
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    opt_full = paddle.load(str(tmp_path / "full" / "latest.pdopt"))
    opt_resumed = paddle.load(str(out / "latest.pdopt"))
    assert opt_full["step"] == opt_resumed["step"] == 120


def test_accumulation_equals_one_big_batch(tmp_path):
    common = ["-o", "Global.max_steps=6", "-o", "Model.dropout=0.0", "-o", "Optimizer.name=sgd",
              "-o", "Optimizer.lr=0.1"]
    _train(tmp_path / "one", *common)
    _train(tmp_path / "acc", *common, "-o", "Optimizer.accum_steps=2")
    one, acc = _params(tmp_path / "one" / "latest.pdparams"), _params(tmp_path / "acc" / "latest.pdparams")
    for k in one:
        np.testing.assert_allclose(one[k], acc[k], atol=1e-6, err_msg=k)


def test_two_ranks_evaluate_every_sample_once(tmp_path):
    _train(tmp_path / "run", "-o", "Global.max_steps=2", launch=2, log_dir=tmp_path / "log")
    res = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'run'}",
                   launch=2, log_dir=tmp_path / "log_eval")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml",
                      "-o", f"Global.output_dir={tmp_path / 'run'}")
    assert single.returncode == 0
    one = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["count"] == one["count"] == 359  # an odd count: shards of 180 and 179
    assert metrics["top1"] == one["top1"] and metrics["top5"] == one["top5"]


def test_divergence_stops_with_last_checkpoint_intact(tmp_path):
    out = tmp_path / "run"
    res = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=30",
                   "-o", "Global.save_every=1", "-o", "Optimizer.name=sgd", "-o", "Optimizer.lr=1e12",
                   "-o", "Optimizer.grad_clip=0", "-o", "Optimizer.warmup_steps=0")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    step = int(line.split("at step ")[1].split(";")[0])
    state = paddle.load(str(out / "latest.pdopt"))
    assert state["step"] == step - 1
    assert all(np.isfinite(v).all() for v in _params(out / "latest.pdparams").values())


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    _train(out, "-o", "Global.max_steps=2")
    before = (out / "latest.pdparams").read_bytes()
    res = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.resume=",
                   "-o", "Global.max_steps=4")
    assert res.returncode == 2 and "already holds checkpoints" in res.stderr
    assert (out / "latest.pdparams").read_bytes() == before


@pytest.mark.parametrize("world,overrides,plan", [
    (1, [], (64, 1)),
    (2, [], (32, 1)),
    (8, ["Data.batch_size=512", "Optimizer.accum_steps=16"], (4, 16)),
    (2, ["Data.batch_size=512", "Data.max_per_card_batch=32", "Optimizer.accum_steps=0"], (32, 8)),
    (1, ["Data.batch_size=48", "Data.max_per_card_batch=20", "Optimizer.accum_steps=0"], (16, 3)),
])
def test_batch_plan(world, overrides, plan):
    assert batch_plan(load_config("configs/quickstart.yaml", overrides), world) == plan


def test_batch_plan_rejects_uneven_splits():
    with pytest.raises(UserInputError, match="not divisible by 3 cards"):
        batch_plan(load_config("configs/quickstart.yaml"), 3)
