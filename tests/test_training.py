"""The training tool over time and under faults: exact resume (SIGTERM, kill -9, epoch
boundaries), divergence, locks, stuck and failing data, 2-rank runs."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import ROOT, default_signals, one_error_line, run_tool, train_ok
from rdrop_paddle.config import load_config
from rdrop_paddle.data.sampler import batch_plan
from rdrop_paddle.engine import checkpoint
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_paddle

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

BASE = ["-c", "configs/quickstart.yaml", "-o", "Global.log_every=5", "-o", "Global.eval_every=1000"]
STRADDLE = ["-o", "Data.batch_size=63", "-o", "Optimizer.accum_steps=3", "-o", "Optimizer.schedule=constant",
            "-o", "Optimizer.warmup_steps=0"]  # 1438 / 63: steps straddle epoch boundaries


def newest(out):
    """(step, weights, train state) of the newest checkpoint in ``out``."""
    mgr = checkpoint.CheckpointManager(str(out), 1)
    step = mgr.steps()[-1]
    weights, state = checkpoint.read(mgr.path(step))
    return step, weights, state


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _train(out, *extra, launch=0, log_dir=None, env=None):
    return train_ok(*BASE, "-o", f"Global.output_dir={out}", *extra, launch=launch, log_dir=log_dir, env=env)


def _start(out, *extra):
    cmd = [sys.executable, f"{ROOT}/tools/train.py", *BASE, "-o", f"Global.output_dir={out}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)  # SIGINT as a terminal leaves it, even under `pytest &`


def _wait_for(path, text, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not (path.exists() and text in path.read_text()):
        time.sleep(0.02)


def test_sigterm_then_resume_is_bit_identical(tmp_path):
    steps = ["-o", "Global.max_steps=120", "-o", "Global.save_every=1000"]
    _train(tmp_path / "full", *steps)
    out = tmp_path / "cut"
    proc = _start(out, *steps)
    _wait_for(out / "train.log", "step 10/")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    saved = [l for l in (out / "train.log").read_text().splitlines() if "SIGTERM: saved step" in l]
    assert saved, "the run finished before SIGTERM arrived"
    cut_at = int(saved[0].split("saved step ")[1].split()[0])
    assert 10 <= cut_at < 120
    _train(out, *steps)  # the config says resume: auto
    assert f"resume at step {cut_at}" in (out / "train.log").read_text()
    step_full, full, _ = newest(tmp_path / "full")
    step_cut, resumed, _ = newest(out)
    assert step_full == step_cut == 120 and same_weights(full, resumed)


def test_resume_is_exact_when_steps_straddle_epochs_and_workers_change(tmp_path):
    _train(tmp_path / "full", *STRADDLE, "-o", "Global.max_steps=50")
    _train(tmp_path / "cut", *STRADDLE, "-o", "Global.max_steps=30", "-o", "Data.num_workers=2")
    _train(tmp_path / "cut", *STRADDLE, "-o", "Global.max_steps=50")
    assert "notice: Global.max_steps 30 -> 50" in (tmp_path / "cut" / "train.log").read_text()
    assert same_weights(newest(tmp_path / "full")[1], newest(tmp_path / "cut")[1])


def test_kill_9_at_any_moment_loses_at_most_save_every_steps(tmp_path):
    steps = ["-o", "Global.max_steps=40", "-o", "Global.save_every=1"]
    _train(tmp_path / "full", *steps)
    out = tmp_path / "killed"
    for delay in (2.2, 2.9, 3.6):
        proc = _start(out, *steps)
        time.sleep(delay)
        proc.kill()
        proc.communicate()
    _train(out, *steps)
    assert same_weights(newest(tmp_path / "full")[1], newest(out)[1])
    assert not [n for n in os.listdir(out / "checkpoints") if n.startswith(".tmp")]


def test_large_seed_trains(tmp_path):
    _train(tmp_path / "run", "-o", "Global.max_steps=3", "-o", f"Global.seed={2 ** 40}")
    assert newest(tmp_path / "run")[0] == 3


def test_accumulation_equals_one_big_batch(tmp_path):
    common = ["-o", "Global.max_steps=6", "-o", "Model.dropout=0.0", "-o", "Optimizer.name=sgd",
              "-o", "Optimizer.lr=0.1"]
    _train(tmp_path / "one", *common)
    _train(tmp_path / "acc", *common, "-o", "Optimizer.accum_steps=2")
    one, acc = newest(tmp_path / "one")[1], newest(tmp_path / "acc")[1]
    for k in one:
        np.testing.assert_allclose(one[k], acc[k], atol=1e-6, err_msg=k)


def test_divergence_saves_nothing_non_finite(tmp_path):
    out = tmp_path / "run"
    res = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=30",
                   "-o", "Global.save_every=1", "-o", "Optimizer.name=sgd", "-o", "Optimizer.lr=1e30",
                   "-o", "Optimizer.grad_clip=0", "-o", "Optimizer.warmup_steps=0", "-o", "Global.eval_every=1")
    line = one_error_line(res, status=1)
    assert "non-finite" in line and "nothing was saved" in line
    for name in os.listdir(out / "checkpoints") if (out / "checkpoints").exists() else []:
        weights, _ = checkpoint.read(str(out / "checkpoints" / name))
        assert all(np.isfinite(v).all() for v in weights.values())
    if (out / "best.pdparams").exists():
        assert all(np.isfinite(v).all() for v in load_paddle(str(out / "best.pdparams")).values())


def test_eval_refuses_non_finite_weights(tmp_path):
    import paddle

    out = tmp_path / "run"
    _train(out, "-o", "Global.max_steps=2")
    weights = load_paddle(str(out / "best.pdparams"))
    weights["head.bias"] = np.full_like(weights["head.bias"], np.nan)
    paddle.save({k: paddle.to_tensor(v) for k, v in weights.items()}, str(tmp_path / "nan.pdparams"))
    res = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'ev'}",
                   "-o", f"Model.pretrained={tmp_path / 'nan.pdparams'}")
    assert "gives non-finite logits" in one_error_line(res, status=1)
    assert not (tmp_path / "ev" / "metrics.json").exists()


def test_resume_with_another_optimizer_is_refused_before_anything_changes(tmp_path):
    out = tmp_path / "run"
    _train(out, "-o", "Global.max_steps=2")
    config = (out / "config.yaml").read_text()
    res = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=4",
                   "-o", "Optimizer.name=sgd")
    assert "the config differs (Optimizer.name: 'adamw' -> 'sgd')" in one_error_line(res)
    assert (out / "config.yaml").read_text() == config and newest(out)[0] == 2
    res = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.resume=",
                   "-o", "Global.max_steps=4")
    assert "already holds a run" in one_error_line(res)


def test_a_second_run_on_the_same_output_dir_is_refused(tmp_path):
    out = tmp_path / "run"
    first = _start(out, "-o", "Global.max_steps=400")
    _wait_for(out / "train.log", "step 5/")
    second = run_tool("tools/train.py", *BASE, "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=400")
    assert "is in use by another training run" in one_error_line(second)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert (out / "train.log").read_text().count("train vit_nano") == 1


_CUSTOM = """
import sys, time, numpy as np
from rdrop_paddle.cpu import configure_environment
configure_environment()
from rdrop_paddle.cli import run_safely
from rdrop_paddle.commands.train import train
from rdrop_paddle.config import load_config
from rdrop_paddle.data.digits import build_digits

train_set, val_set = build_digits(0.2, 0)
class Broken(type(train_set)):
    def __getitem__(self, key):
        if key[1][2] >= 64 * 3:  # sample positions of step 4 on
            if sys.argv[2] == "stuck":
                time.sleep(3600)
            raise OSError("disk read error")
        return super().__getitem__(key)
cfg = load_config("configs/quickstart.yaml", [f"Global.output_dir={sys.argv[1]}", "Global.stop_timeout=3",
                                              "Global.log_every=1", "Global.save_every=2"])
broken = Broken(train_set.images, train_set.labels, train_set.transform)
sys.exit(run_safely(lambda: train(cfg, datasets=(broken, val_set))))
"""


def test_failing_data_ends_the_run_with_its_error(tmp_path):
    res = subprocess.run([sys.executable, "-c", _CUSTOM, str(tmp_path / "run"), "fail"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "data loading failed: OSError: disk read error" in one_error_line(res, status=1)


def test_sigterm_ends_a_run_whose_data_is_stuck(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _CUSTOM, str(out), "stuck"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "train.log", "step 3/")
    time.sleep(0.5)
    start = time.time()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and time.time() - start < 20
    assert "no step boundary within 3 s; exiting without saving; the newest checkpoint is step 2" in stderr


def test_dataloader_workers_die_with_a_killed_trainer(tmp_path):
    proc = _start(tmp_path / "run", "-o", "Data.num_workers=2", "-o", "Global.max_steps=100000")
    _wait_for(tmp_path / "run" / "train.log", "step 5/")
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 2
    proc.kill()
    proc.communicate()
    time.sleep(1.0)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}") and
             "Z" not in open(f"/proc/{pid}/stat").read().split()[2]]
    assert not alive


def test_two_ranks_evaluate_every_sample_once(tmp_path):
    import json

    _train(tmp_path / "run", "-o", "Global.max_steps=2", launch=2, log_dir=tmp_path / "log")
    res = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'run'}",
                   launch=2, log_dir=tmp_path / "log_eval")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    single = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'run'}")
    assert single.returncode == 0
    one = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["count"] == one["count"] == 359  # an odd count: shards of 180 and 179
    assert metrics["top1"] == one["top1"] and metrics["top5"] == one["top5"]


@pytest.mark.parametrize("world,overrides,plan", [
    (1, [], (64, 1)),
    (2, [], (32, 1)),
    (8, ["Data.batch_size=512", "Optimizer.accum_steps=16"], (4, 16)),
    (2, ["Data.batch_size=512", "Data.max_per_card_batch=32", "Optimizer.accum_steps=0"], (32, 8)),
    (1, ["Data.batch_size=48", "Data.max_per_card_batch=20", "Optimizer.accum_steps=0"], (16, 3)),
])
def test_batch_plan(world, overrides, plan):
    cfg = load_config("configs/quickstart.yaml", overrides)
    assert batch_plan(cfg.Data.batch_size, world, cfg.Optimizer.accum_steps, cfg.Data.max_per_card_batch) == plan


def test_batch_plan_rejects_uneven_splits():
    with pytest.raises(UserInputError, match="not divisible by 3 cards"):
        batch_plan(64, 3)


def tipc_values(log_text: str, key: str) -> list[float]:
    """The number after ``key`` on each line holding it, as the benchmark analysis script of
    Paddle's TIPC reads a log (``--keyword ips: --convergence_key loss:``)."""
    return [float(line.split(key)[1].strip().split()[0].rstrip(",")) for line in log_text.splitlines()
            if key in line]


def test_reader_cost_is_the_wait_for_data_and_the_log_reads_as_tipc_reads_it(tmp_path, monkeypatch):
    """Asserts what the code controls (issue 29.9; before: a ratio to compute speed that a
    loaded machine flipped).  Taking each batch waits a known 50 ms inside ``next()``, so every
    logged reader_cost is at least that, batch_cost at least reader_cost, and ips the global
    batch over batch_cost.  The values a TIPC-style parse of train.log finds (issue 28.2)
    are VisualDL's, to the printed precision."""
    import rdrop_paddle.commands.train as train_module
    from visualdl import LogReader

    wait = 0.05

    class SlowLoader(train_module.Loader):
        def __iter__(self):
            inner = super().__iter__()
            try:
                for batch in inner:
                    time.sleep(wait)
                    yield batch
            finally:
                inner.close()

    monkeypatch.setattr(train_module, "Loader", SlowLoader)
    cfg = load_config("configs/quickstart.yaml", [f"Global.output_dir={tmp_path}", "Global.max_steps=12",
                                                  "Global.log_every=6", "Global.eval_every=6"])
    train_module.train(cfg)
    log = (tmp_path / "train.log").read_text()
    train_lines = "\n".join(line for line in log.splitlines() if "[Train]" in line)
    reader, batch = tipc_values(train_lines, "reader_cost:"), tipc_values(train_lines, "batch_cost:")
    ips = tipc_values(train_lines, "ips:")
    assert len(reader) == len(batch) == len(ips) == 2
    for r, b, i in zip(reader, batch, ips):
        assert wait <= r <= b and i == pytest.approx(64 / b, rel=1e-3), (r, b, i)
    (record,) = list((tmp_path / "vdl").iterdir())
    vdl = LogReader(file_path=str(record))
    for tag, key, digits in (("train/loss", "loss:", 5), ("train/ips", "ips:", 1), ("train/reader_cost", "reader_cost:", 5)):
        np.testing.assert_allclose(tipc_values(train_lines, key), [s.value for s in vdl.get_data("scalar", tag)],
                                   atol=0.51 * 10 ** -digits, rtol=1e-6)
    evals = tipc_values("\n".join(line for line in log.splitlines() if "[Eval]" in line), "top1:")
    np.testing.assert_allclose(evals, [s.value for s in vdl.get_data("scalar", "eval/top1")], atol=0.006)
    assert f"best_top1: {max(evals):.2f}" in log.splitlines()[-1]
