"""STS-B, regression with R-Drop (issue 43 item 4): the objective against the official
``bert_kl`` regression branch, Pearson and Spearman against scipy, GLUE's STS-B TSV, and a run
of the tools on a generated learnable scoring task (train, eval, export, infer)."""
import json
import os

import numpy as np
import paddle
import pytest
import torch

from tests.helpers import one_error_line, run_tool, train_ok

HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"  # GLUE STS-B


def test_loss_is_the_official_bert_kl_regression_branch():
    """dropreg/R-Drop huggingface_transformer_src/src/transformers/models/bert/modeling_bert.py
    ``bert_kl``, ``num_labels == 1``: ``alpha * MSE(l1, y) + alpha * MSE(l2, y) + 1.0 * MSE(l1, l2)``
    with ``MSELoss()`` on ``view(-1)``, alpha 1.0, transcribed."""
    from rdrop_paddle.losses import RDropMSE

    rng = np.random.default_rng(0)
    a, b = rng.normal(2, 1, (8, 1)).astype(np.float32), rng.normal(2, 1, (8, 1)).astype(np.float32)
    y = rng.uniform(0, 5, 8).astype(np.float32)
    logits_list = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    labels, loss, alpha = torch.tensor(y), None, 1.0
    for logits in logits_list:
        loss_fct = torch.nn.MSELoss()
        if loss:
            loss += alpha * loss_fct(logits.view(-1), labels.view(-1))
        else:
            loss = alpha * loss_fct(logits.view(-1), labels.view(-1))
    loss += 1.0 * torch.nn.MSELoss()(logits_list[0].view(-1), logits_list[-1].view(-1))
    loss.backward()
    p, q = (paddle.to_tensor(v, stop_gradient=False) for v in (a, b))
    out = RDropMSE(alpha=1.0, convention="vit_src")(p, q, paddle.to_tensor(y))
    out["loss"].backward()
    assert float(out["loss"]) == pytest.approx(float(loss.detach()), rel=1e-6)
    np.testing.assert_allclose(p.grad.numpy(), logits_list[0].grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(q.grad.numpy(), logits_list[1].grad.numpy(), atol=1e-6)
    half = RDropMSE(alpha=1.0, convention="readme")(paddle.to_tensor(a), paddle.to_tensor(b), paddle.to_tensor(y))
    assert float(half["loss"]) == pytest.approx(float(loss.detach()) / 2, rel=1e-6)
    base = RDropMSE(alpha=0.0)(paddle.to_tensor(a), None, paddle.to_tensor(y))
    assert float(base["loss"]) == pytest.approx(float(np.mean((a[:, 0] - y) ** 2)), rel=1e-6)


def test_pearson_and_spearman_equal_scipy():
    from scipy.stats import pearsonr, spearmanr

    from rdrop_paddle.engine.metrics import pearson, spearman

    rng = np.random.default_rng(1)
    y = np.round(rng.uniform(0, 5, 300), 1)  # ties, as STS-B's scores have
    x = y + rng.normal(0, 1, 300)
    assert pearson(x, y) == pytest.approx(100 * pearsonr(x, y)[0], rel=1e-9)
    assert spearman(np.round(x), y) == pytest.approx(100 * spearmanr(np.round(x), y)[0], rel=1e-9)
    assert pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(100.0)  # by hand: a line
    assert pearson(np.ones(5), y[:5]) == 0.0 and spearman(np.ones(5), y[:5]) == 0.0  # undefined: 0, never NaN
    assert type(pearson(x, y)) is float and type(spearman(x, y)) is float  # plain floats: a checkpoint records them


def _sentence(rng):
    from rdrop_paddle.commands.demo_text import _BAD, _GOOD, _SUBJECTS

    adjectives = [rng.choice(_GOOD) if rng.random() < 0.5 else rng.choice(_BAD) for _ in range(2)]
    return f"{rng.choice(_SUBJECTS)} is {adjectives[0]} and {adjectives[1]}", sum(a in _GOOD for a in adjectives)


def write_stsb(folder, train=1000, dev=200, seed=0):
    """GLUE's STS-B layout; the score (0 to 5) is 1.25 x the positive adjectives of the pair."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name, n in (("train.tsv", train), ("dev.tsv", dev)):
        lines = [HEADER]
        for i in range(n):
            (a, good_a), (b, good_b) = _sentence(rng), _sentence(rng)
            lines.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{1.25 * (good_a + good_b):.3f}")
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def test_stsb_tsv_is_read_with_scores(tmp_path):
    from rdrop_paddle.data.text.sources import glue

    write_stsb(tmp_path, train=5, dev=3)
    train, dev, names = glue(str(tmp_path), "sts-b", skip_bad=False)
    assert names == ["score"] and train.labels.dtype == np.float32 and len(dev.labels) == 3
    rows = [line.split("\t") for line in (tmp_path / "train.tsv").read_text().splitlines()[1:]]
    assert train.texts == [r[7] for r in rows] and train.pairs == [r[8] for r in rows]
    np.testing.assert_allclose(train.labels, [float(r[9]) for r in rows])
    with open(tmp_path / "train.tsv", "a", encoding="utf-8") as f:
        f.write("9\tmain\tx\t2012\t9\tnone\tnone\ta cat\ta dog\tnan\n")
    with pytest.raises(Exception, match=r"train.tsv:7: score 'nan' is not a finite number"):
        glue(str(tmp_path), "sts-b", skip_bad=False)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    root = tmp_path_factory.mktemp("stsb")
    assert run_tool("tools/make_demo_text.py", "--out", root / "demo").returncode == 0
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", root / "demo" / "bert_tiny_hf",
                   "--out", root / "bert_tiny")
    assert res.returncode == 0, res.stderr[-2000:]
    write_stsb(root / "STS-B")
    return root


def _args(root, out, *extra):
    return ["-c", "configs/bert_glue.yaml", "-o", f"Model.pretrained={root / 'bert_tiny'}", "-o", "Global.device=cpu",
            "-o", f"Data.root={root / 'STS-B'}", "-o", "Data.task=sts-b", "-o", f"Global.output_dir={out}", *extra]


@pytest.mark.slow
def test_stsb_run_train_eval_export_infer(tiny_bert, tmp_path):
    """configs/bert_glue.yaml with docs/text.md's STS-B overrides, on the tiny demo BERT (a
    random model, so the demo's learning rate): Pearson above 90 on the dev pairs; eval prints
    both correlations (the same on two cards), export and infer give each pair its score,
    whose correlations are eval's."""
    from scipy.stats import pearsonr, spearmanr

    out = tmp_path / "run"
    train_ok(*_args(tiny_bert, out, "-o", "Loss.alpha=1.0", "-o", "Global.max_steps=300", "-o", "Global.eval_every=100",
                    "-o", "Global.save_every=100", "-o", "Optimizer.lr=5e-4", "-o", "Optimizer.warmup_steps=100",
                    "-o", "Data.batch_size=32", "-o", "Loss.kl_batch_size=32", "-o", "Data.max_seq_len=32"))
    log = (out / "train.log").read_text()
    assert "[Eval][step 300] pearson: " in log and "done: best_pearson: " in log
    best = float(log.split("done: best_pearson: ")[1].split()[0])
    assert best > 90, log[-1500:]
    ev = run_tool("tools/eval.py", *_args(tiny_bert, out, "-o", "Data.max_seq_len=32", "-o", "Model.pretrained="))
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pearson"] == pytest.approx(best, abs=0.01) and metrics["count"] == 200
    assert ev.stdout.strip().splitlines()[-1] == f"pearson: {metrics['pearson']:.2f}, spearman: {metrics['spearman']:.2f}"
    two = run_tool("tools/eval.py", *_args(tiny_bert, out, "-o", "Data.max_seq_len=32", "-o", "Model.pretrained="),
                   launch=2, log_dir=tmp_path / "log")  # each card scores half the pairs; ranks need all of them
    assert two.returncode == 0, two.stderr[-2000:]
    sharded = json.loads((out / "metrics.json").read_text())
    assert sharded["count"] == 200
    for key in ("pearson", "spearman", "loss"):
        assert sharded[key] == pytest.approx(metrics[key], rel=1e-5), key
    exported = tmp_path / "exported"
    ex = run_tool("tools/export_model.py", *_args(tiny_bert, out, "-o", "Data.max_seq_len=32", "-o", "Model.pretrained="),
                  "--out", exported, "--onnx")
    assert ex.returncode == 0, ex.stderr[-2000:]
    assert json.loads((exported / "infer_cfg.json").read_text())["output"] == "score"
    rows = [line.split("\t") for line in (tiny_bert / "STS-B" / "dev.tsv").read_text().splitlines()[1:]]
    texts = tmp_path / "pairs.txt"
    texts.write_text("".join(f"{r[7]}\t{r[8]}\n" for r in rows), encoding="utf-8")
    scores = {}
    for backend in ("paddle", "onnxruntime"):
        res = run_tool("tools/infer.py", "--model-dir", exported, "--text-file", texts, "--backend", backend,
                       "--out", tmp_path / f"{backend}.json")
        assert res.returncode == 0, res.stderr[-2000:]
        assert "| text | score |" in res.stdout and " [SEP] " in res.stdout
        scores[backend] = np.array([p["score"] for p in json.loads((tmp_path / f"{backend}.json").read_text())["predictions"]])
    np.testing.assert_allclose(scores["paddle"], scores["onnxruntime"], atol=1e-4)
    y = np.array([float(r[9]) for r in rows])
    assert 100 * pearsonr(scores["paddle"], y)[0] == pytest.approx(metrics["pearson"], abs=0.05)
    assert 100 * spearmanr(scores["paddle"], y)[0] == pytest.approx(metrics["spearman"], abs=0.05)


def test_regression_needs_scores_and_one_output(tiny_bert, tmp_path):
    res = run_tool("tools/train.py", *_args(tiny_bert, tmp_path / "a", "-o", "Model.num_classes=3"))
    assert "a regression model has one output" in one_error_line(res)
    res = run_tool("tools/train.py", *_args(tiny_bert, tmp_path / "b", "-o", "Model.num_classes=1",
                                           "-o", "Data.task=mrpc"))
    assert "needs scored data" in one_error_line(res)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_resumed_regression_run_is_the_uninterrupted_one_and_records_its_best(tiny_bert, tmp_path):
    """The regression path through the same loop: 12 steps with an evaluation at 6, stopped at 6
    and resumed, give the same weights and the same best Pearson as 12 straight (a correlation's
    best may be negative, below top-1's -1 start)."""
    from tests.helpers import newest_weights

    steps = ["-o", "Global.eval_every=6", "-o", "Global.save_every=6", "-o", "Data.max_seq_len=32",
             "-o", "Optimizer.lr=5e-4", "-o", "Data.batch_size=16", "-o", "Loss.kl_batch_size=16"]
    train_ok(*_args(tiny_bert, tmp_path / "full", *steps, "-o", "Global.max_steps=12"))
    train_ok(*_args(tiny_bert, tmp_path / "cut", *steps, "-o", "Global.max_steps=6", "-o", "Data.num_workers=2"))
    train_ok(*_args(tiny_bert, tmp_path / "cut", *steps, "-o", "Global.max_steps=12", "-o", "Global.resume=auto"))
    full, cut = newest_weights(tmp_path / "full"), newest_weights(tmp_path / "cut")
    assert full.keys() == cut.keys() and all(np.array_equal(full[k], cut[k]) for k in full)
    logs = [(tmp_path / run / "train.log").read_text() for run in ("full", "cut")]
    best = [float(log.split("done: best_pearson: ")[-1].split()[0]) for log in logs]
    assert best[0] == best[1] and (tmp_path / "full" / "best.pdparams").is_file()
