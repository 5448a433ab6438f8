"""Text runs through the same tools (issue 37): the demo walk-through as shipped (generate,
convert, train, eval, export, infer on both backends), exact resume with DataLoader workers,
two cards under paddle.distributed.launch, bad inputs that write nothing."""
import json
import os

import numpy as np
import paddle
import pytest

from tests.helpers import newest_weights, one_error_line, run_tool, train_ok
from tests.text_reference import text_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    res = run_tool("tools/make_demo_text.py", "--out", root / "demo")  # as docs/text.md runs it
    assert res.returncode == 0, res.stderr[-2000:]
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", root / "demo" / "bert_tiny_hf",
                   "--out", root / "bert_tiny")
    assert res.returncode == 0, res.stderr[-2000:]
    return root


def _args(demo, out, *extra):
    return ["-c", "configs/text_demo.yaml", "-o", f"Model.pretrained={demo / 'bert_tiny'}",
            "-o", f"Data.root={demo / 'demo' / 'data'}", "-o", f"Global.output_dir={out}", *extra]


@pytest.mark.extended  # docs/text.md as written, 3 minutes: CI's second step
def test_walk_through_as_written(tmp_path):
    """docs/text.md's walk-through block as written (configs/text_demo.yaml as shipped), in a venv
    with README's install only: its figures, then the model exported with ``--onnx`` on both
    backends against the dygraph logits."""
    import re
    import subprocess

    from tests.helpers import ROOT, readme_install_env

    page = open(os.path.join(ROOT, "docs", "text.md"), encoding="utf-8").read()
    block = re.search(r"```bash\n(# text walk-through\n.*?)```", page, flags=re.S).group(1)
    for name in ("tools", "configs"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    env = {k: v for k, v in readme_install_env().items() if k != "OMP_NUM_THREADS"}  # README's install only
    res = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    out = tmp_path / "output" / "text_demo"
    log = (out / "train.log").read_text()
    assert "train bert on text_folder: 2000 train / 500 val texts" in log
    best = float(log.split("done: best_top1: ")[1].split()[0])
    quoted = float(re.search(r"ends\s+with `done: best_top1: ([0-9.]+)`", page).group(1))
    assert abs(best - quoted) < 2.0, log[-1500:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(best) and metrics["class_names"] == ["positive", "negative", "neutral"]
    assert 90 < metrics["mcc"] <= 100 and 90 < metrics["f1"] <= 100
    assert sorted(n for n in os.listdir(out) if n.endswith((".json", ".txt"))) == [
        "config.json", "metrics.json", "tokenizer_config.json", "vocab.txt"]
    rows = [line.split("|")[2].split()[0] for line in res.stdout.splitlines() if line.startswith("| the movie")
            or line.startswith("| overall")]
    assert rows == ["negative", "positive"], res.stdout[-1500:]
    res = run_tool("tools/export_model.py", "-c", "configs/text_demo.yaml", "-o", f"Global.output_dir={out}",
                   "-o", f"Data.root={tmp_path / 'demo_text' / 'data'}", "--out", out / "exported", "--onnx")
    assert res.returncode == 0, res.stderr[-2000:]  # the page's --onnx: with the test requirements' paddle2onnx
    texts = ["the movie is not good.", "overall the plot is brilliant!", "the cast is in english"]
    logits = {}
    for backend in ("paddle", "onnxruntime"):
        res = run_tool("tools/infer.py", "--model-dir", out / "exported", "--text", *texts,
                       "--backend", backend, "--topk", "1", "--out", tmp_path / f"{backend}.json",
                       env={"OMP_NUM_THREADS": None})  # as a user's shell: the tool chooses it
        assert res.returncode == 0 and res.stderr == "", res.stderr[-2000:]
        predictions = json.loads((tmp_path / f"{backend}.json").read_text())["predictions"]
        assert [p["topk"][0]["name"] for p in predictions] == ["negative", "positive", "neutral"]
        logits[backend] = np.array([p["logits"] for p in predictions])
    from rdrop_paddle.data.text import Tokenizer
    from rdrop_paddle.models import from_pretrained
    from rdrop_paddle.models.pretrained import load_text_weights

    model = from_pretrained(str(tmp_path / "demo_text" / "bert_tiny"), 3, notice=lambda _: None)
    load_text_weights(model, str(out / "best.pdparams"))
    model.eval()
    batch = Tokenizer.from_pretrained(str(out))(texts, max_length=32)
    dygraph = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}).numpy()
    for backend, value in logits.items():
        np.testing.assert_allclose(value, dygraph, atol=1e-4, err_msg=backend)


def test_resume_is_exact_with_workers(demo, tmp_path):
    steps = ["-o", "Optimizer.schedule=constant", "-o", "Global.eval_every=1000", "-o", "Global.save_every=1000"]
    train_ok(*_args(demo, tmp_path / "full", *steps, "-o", "Global.max_steps=24"))
    train_ok(*_args(demo, tmp_path / "cut", *steps, "-o", "Global.max_steps=12", "-o", "Data.num_workers=2"))
    train_ok(*_args(demo, tmp_path / "cut", *steps, "-o", "Global.max_steps=24", "-o", "Global.resume=auto"))
    full, cut = newest_weights(tmp_path / "full"), newest_weights(tmp_path / "cut")
    assert full.keys() == cut.keys() and all(np.array_equal(full[k], cut[k]) for k in full)


def test_two_cards(demo, tmp_path):
    out = tmp_path / "run"
    train_ok(*_args(demo, out, "-o", "Global.max_steps=6", "-o", "Global.eval_every=6"), launch=2,
             log_dir=tmp_path / "log")
    assert "global batch 32 = 16 x 1 accum x 2 card(s)" in (out / "train.log").read_text()
    assert np.isfinite(np.concatenate([v.ravel() for v in newest_weights(out).values()])).all()


@pytest.mark.parametrize("problem", ["label", "model_type", "max_seq_len"])
def test_bad_input_writes_nothing(problem, demo, tmp_path):
    root = text_folder(tmp_path / "data", train=["the movie is good\tpos"] * 4 + ["the cat\tcat"],
                       labels=("neg", "pos"))
    pretrained = demo / "bert_tiny"
    if problem == "model_type":
        pretrained = tmp_path / "ernie_named"
        pretrained.mkdir()
        for name in os.listdir(demo / "bert_tiny"):
            (pretrained / name).write_bytes((demo / "bert_tiny" / name).read_bytes())
        root = str(demo / "demo" / "data")
    extra = {"model_type": ["-o", "Model.name=ernie"], "max_seq_len": ["-o", "Data.max_seq_len=129"]}.get(problem, [])
    res = run_tool("tools/train.py", "-c", "configs/text_demo.yaml", "-o", f"Model.pretrained={pretrained}",
                   "-o", f"Data.root={root}", "-o", f"Global.output_dir={tmp_path / 'out'}",
                   *extra)
    line = one_error_line(res)
    assert {"label": "train.txt:5: label 'cat'", "model_type": "is a bert model",
            "max_seq_len": "longer than the model's max_position_embeddings 128"}[problem] in line
    assert not os.path.exists(tmp_path / "out")


def test_eval_and_export_after_training_use_the_run_not_its_start(demo, tmp_path):
    """The training command line (with Model.pretrained) run again through eval and export
    takes the run's best weights, with a notice naming both files (issue 47)."""
    out = tmp_path / "run"
    train_ok(*_args(demo, out, "-o", "Global.max_steps=6", "-o", "Global.eval_every=6"))
    res = run_tool("tools/eval.py", *_args(demo, out))
    assert res.returncode == 0, res.stderr[-2000:]
    notice = next(line for line in res.stdout.splitlines() if line.startswith("notice:"))
    assert str(out / "best.pdparams") in notice and str(demo / "bert_tiny") in notice
    assert f"from {out / 'best.pdparams'}" in res.stdout
    res = run_tool("tools/export_model.py", *_args(demo, out), "--out", tmp_path / "exported")
    assert res.returncode == 0 and "holds a trained run" in res.stdout, res.stderr[-2000:]
    assert json.loads((tmp_path / "exported" / "infer_cfg.json").read_text())["weights"] == str(out / "best.pdparams")
