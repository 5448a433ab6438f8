"""The quickstart end to end (1 process and 2 under paddle.distributed.launch), bad input as one
line, and the compare / plot tools."""
import json

import numpy as np
import pytest
import yaml

from helpers import one_error_line, run_tool, train_ok
from test_training import newest

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

QUICK = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=8", "-o", "Global.log_every=4",
         "-o", "Global.eval_every=4", "-o", "Global.save_every=4"]


def _train(out, *extra, launch=0, log_dir=None):
    return train_ok(*QUICK, "-o", f"Global.output_dir={out}", *extra, launch=launch, log_dir=log_dir)


def test_quickstart_train_then_eval(tmp_path):
    out = tmp_path / "run"
    _train(out)
    for name in ("train.log", "best.pdparams", "config.yaml", "checkpoints/step_0000008/manifest.json"):
        assert (out / name).is_file(), name
    log = (out / "train.log").read_text()
    assert "step 8/8" in log and "kl" in log
    evals = [float(line.split("top1: ")[1].split(",")[0]) for line in log.splitlines() if "[Eval]" in line]

    from visualdl import LogReader

    (record,) = list((out / "vdl").iterdir())
    reader = LogReader(file_path=str(record))
    assert [s.id for s in reader.get_data("scalar", "train/loss")] == [4, 8]
    assert {"train/ce", "train/kl", "train/lr", "train/ips", "train/grad_norm", "train/reader_cost",
            "train/batch_cost", "eval/top5"} <= set(
        reader.get_tags()["scalar"])
    np.testing.assert_allclose([s.value for s in reader.get_data("scalar", "eval/top1")], evals, atol=0.006)
    assert yaml.safe_load((out / "config.yaml").read_text())["Global"]["max_steps"] == 8

    res = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={out}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1].startswith("top1: ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["count"] == 359  # 20% of the 1797 digits, each counted once
    assert metrics["top1"] == pytest.approx(max(evals), abs=0.01)  # the checkpoint kept is the best


def test_two_processes_match_one_without_dropout(tmp_path):
    """Data parallel over 2 ranks = 1 process with the same global batch (dropout off).

    SGD, not Adam: the key bias of attention has an exactly-zero true gradient, and Adam
    would turn its float rounding noise into lr-sized steps.
    """
    common = ["-o", "Model.dropout=0.0", "-o", "Optimizer.name=sgd", "-o", "Optimizer.lr=0.1"]
    _train(tmp_path / "one", *common)
    _train(tmp_path / "two", *common, launch=2, log_dir=tmp_path / "launch")
    one, two = newest(tmp_path / "one")[1], newest(tmp_path / "two")[1]
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(one[key], two[key], atol=1e-6, err_msg=key)
    log_two = (tmp_path / "two" / "train.log").read_text()
    assert log_two.count("step 8/8") == 1, "rank 0 alone writes the log"

    def losses(log):
        return np.float64([l.split("loss: ")[1].split(",")[0] for l in log.splitlines() if "[Train]" in l])

    np.testing.assert_allclose(losses((tmp_path / "one" / "train.log").read_text()), losses(log_two), atol=1e-4)


def test_same_seed_same_weights(tmp_path):
    for name, extra in (("a", []), ("b", []), ("c", ["-o", "Global.seed=7"])):
        _train(tmp_path / name, "-o", "Global.max_steps=4", *extra)
    a, b, c = (newest(tmp_path / r)[1] for r in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("tool,args,needle", [
    ("tools/train.py", ["-o", "Model.name=resnet50"], "unknown model 'resnet50'; valid names: vit_"),
    ("tools/train.py", ["-o", "Loss.alpah=1"], "unknown key Loss.alpah"),
    ("tools/train.py", ["-o", "Global.max_steps"], "malformed override"),
    ("tools/train.py", ["-o", "Data.name=cifar100", "-o", "Data.root=/nonexistent/cifar.tar.gz",
                        "-o", "Model.name=vit_tiny_patch16_224", "-o", "Model.image_size=32"],
     "CIFAR-100 not found at /nonexistent/cifar.tar.gz"),
    ("tools/train.py", ["-o", "Global.amp=fp16"], "Global.amp fp16 needs Global.device gpu"),
    ("tools/train.py", ["-o", "Global.amp=on"], "'on' is not one of off, fp16, bf16"),
    ("tools/train.py", ["-o", "Model.dropout=1.5"], "Model.dropout must be in [0, 1)"),
    ("tools/train.py", ["-o", "Data.num_workers=-1"], "Data.num_workers must be >= 0"),
    ("tools/train.py", ["-o", "Model.name=vit_tiny_patch16_224", "-o", "Model.image_size=30",
                        "-o", "Data.name=cifar100"], "image_size 30 is not a positive multiple of the patch"),
    ("tools/train.py", ["-o", "Loss.alpha=.nan"], "Loss.alpha must be a finite number >= 0"),
    ("tools/eval.py", ["-o", "Model.pretrained=/nonexistent/best.pdparams"],
     "checkpoint not found: /nonexistent/best.pdparams"),
])
def test_bad_input_is_one_clear_line(tmp_path, tool, args, needle):
    res = run_tool(tool, "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path}", *args)
    assert needle in one_error_line(res), res.stderr[-2000:]
    assert not (tmp_path / "best.pdparams").exists()


def test_bad_files_and_folders_are_one_clear_line(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"Global:\n  output_dir: caf\xe9\n")
    assert "not UTF-8 text" in one_error_line(run_tool("tools/train.py", "-c", latin))
    (tmp_path / "afile").write_text("x")
    res = run_tool("tools/train.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'afile'}")
    assert "is a file, not a folder" in one_error_line(res)
    out = tmp_path / "run"
    _train(out, "-o", "Global.max_steps=2")
    (out / "checkpoints" / "step_final.pdopt").write_text("stray")  # ignored: not a checkpoint folder
    _train(out, "-o", "Global.max_steps=3")
    assert newest(out)[0] == 3


def test_compare_and_plot_tools(tmp_path):
    res = run_tool("tools/compare.py", "-c", "configs/quickstart.yaml", "--seeds", 2, "--out", tmp_path / "cmp",
                   "--image", tmp_path / "cmp.png", "-o", "Global.max_steps=4", "-o", "Global.log_every=2")
    assert res.returncode == 0, res.stderr[-2000:]
    table = [l for l in res.stdout.splitlines() if l.startswith("| ")]
    assert table[0].startswith("| alpha | runs | top-1") and len(table) == 4
    assert table[2].startswith("| 0 | 2 |") and table[3].startswith("| 0.3 | 2 |")
    runs = json.loads((tmp_path / "cmp" / "compare.json").read_text())["runs"]
    assert sorted((r["alpha"], r["seed"]) for r in runs) == [(0.0, 42), (0.0, 43), (0.3, 42), (0.3, 43)]
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = run_tool("tools/plot_logs.py", "--logdir", tmp_path / "cmp" / "alpha0.3_seed42", "--out", tmp_path / "c.png")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert "no VisualDL records" in one_error_line(run_tool("tools/plot_logs.py", "--logdir", tmp_path / "nothing"))
    res = run_tool("tools/compare.py", "-c", "configs/quickstart.yaml", "--seeds", 0, "--out", tmp_path / "c0")
    assert "--seeds must be at least 1" in one_error_line(res)
