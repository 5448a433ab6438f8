"""Soft targets with R-Drop against PyTorch, the EMA against its formula, layer-wise lr decay per group."""
import os

import numpy as np
import paddle
import pytest

from rdrop_paddle.config import OptimizerConfig
from rdrop_paddle.engine.ema import ModelEma
from rdrop_paddle.engine.layer_decay import layer_id, lr_scales
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.models import build_model


def _torch_rdrop(p, q, target, alpha, smoothing, convention):
    """The official vit_src objective with PyTorch's soft-target, label-smoothed CE."""
    import torch.nn.functional as F

    ce = F.cross_entropy(p, target, label_smoothing=smoothing) + F.cross_entropy(q, target, label_smoothing=smoothing)
    kl = (F.kl_div(F.log_softmax(p, -1), F.softmax(q, -1), reduction="sum")
          + F.kl_div(F.log_softmax(q, -1), F.softmax(p, -1), reduction="sum"))
    if convention == "readme":
        return 0.5 * ce + alpha * kl / 2
    return ce + alpha * kl


@pytest.mark.parametrize("convention", ["vit_src", "readme"])
@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_soft_target_rdrop_loss_and_gradients_match_pytorch(convention, soft, smoothing):
    import torch

    rng = np.random.default_rng(0)
    p0, q0 = (rng.standard_normal((6, 7)).astype(np.float32) * 3 for _ in range(2))
    labels = rng.integers(0, 7, 6)
    lam = 0.63
    target = (lam * np.eye(7)[labels] + (1 - lam) * np.eye(7)[labels[::-1]]).astype(np.float32) if soft else labels
    pt, qt = (torch.tensor(a, requires_grad=True) for a in (p0, q0))
    expected = _torch_rdrop(pt, qt, torch.tensor(target), 0.3, smoothing, convention)
    expected.backward()
    pp, qp = (paddle.to_tensor(a, stop_gradient=False) for a in (p0, q0))
    out = RDropCrossEntropy(0.3, convention, label_smoothing=smoothing)(pp, qp, paddle.to_tensor(target))
    out["loss"].backward()
    np.testing.assert_allclose(float(out["loss"]), float(expected.detach()), rtol=1e-5)
    np.testing.assert_allclose(pp.grad.numpy(), pt.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(qp.grad.numpy(), qt.grad.numpy(), atol=1e-6)


def test_one_hot_targets_give_the_label_loss():
    rng = np.random.default_rng(1)
    p, q = (paddle.to_tensor(rng.standard_normal((5, 4)).astype(np.float32)) for _ in range(2))
    y = rng.integers(0, 4, 5)
    crit = RDropCrossEntropy(0.3, label_smoothing=0.1)
    a = crit(p, q, paddle.to_tensor(y))["loss"]
    b = crit(p, q, paddle.to_tensor(np.eye(4, dtype=np.float32)[y]))["loss"]
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)


def _tiny(seed=0):
    paddle.seed(seed)
    return build_model("vit_nano_patch4_8", num_classes=3)


def test_ema_follows_its_formula_over_steps():
    model = _tiny()
    ema = ModelEma(model, 0.9)
    start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    expected = dict(start)
    opt = paddle.optimizer.SGD(0.1, parameters=model.parameters())
    for step in range(3):
        loss = model(paddle.randn([2, 1, 8, 8])).square().mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
        ema.update(model)
        now = {k: v.numpy() for k, v in model.state_dict().items()}
        expected = {k: 0.9 * expected[k] + 0.1 * now[k] for k in expected}
    for key, value in ema.state_dict().items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6, err_msg=key)
    raw = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with ema.applied(model):
        np.testing.assert_array_equal(model.state_dict()["head.weight"].numpy(), ema.state_dict()["head.weight"])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), raw[key])


def test_layer_ids_are_beits():
    assert [layer_id(n, 13) for n in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight",
                                      "blocks.11.norm2.bias", "norm.weight", "head.bias")] == [0, 0, 0, 1, 12, 13, 13]


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_layer_decay_gives_each_group_lr_times_decay_power(name):
    """One step from zero state with a known gradient: the move of each parameter reveals its lr.
    SGD (momentum 0): delta = lr_eff * g.  AdamW's first step: delta = lr_eff * g / (|g| + eps)."""
    model = _tiny()
    cfg = OptimizerConfig(name=name, lr=0.01, momentum=0.0, weight_decay=0.0, warmup_steps=0,
                          schedule="constant", grad_clip=0.0, layer_decay=0.5)
    opt = build_optimizer(cfg, model, build_scheduler(cfg, 10))
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    grads = {}
    for n, p in model.named_parameters():
        g = np.random.default_rng(abs(hash(n)) % 2 ** 32).uniform(0.5, 1.0, p.shape).astype(np.float32)
        p.grad = paddle.to_tensor(g)
        grads[n] = g
    opt.step()
    num_layers = len(model.blocks) + 1
    for n, p in model.named_parameters():
        expected_lr = 0.01 * 0.5 ** (num_layers - layer_id(n, num_layers))
        step = before[n] - p.numpy()
        direction = grads[n] if name == "sgd" else grads[n] / (np.abs(grads[n]) + 1e-8)
        np.testing.assert_allclose(step, expected_lr * direction, rtol=2e-3, atol=1e-9, err_msg=n)
    assert sorted(set(lr_scales(model, 0.5).values())) == [0.5 ** k for k in range(num_layers, -1, -1)]


def test_ema_warmup_follows_tensorflows_num_updates_rule():
    """Step n averages with min(decay, n / (9 + n)) = TF's min(decay, (1 + k) / (10 + k)), k = n - 1."""
    model = _tiny()
    ema = ModelEma(model, 0.9998, warmup=True)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    opt = paddle.optimizer.SGD(0.1, parameters=model.parameters())
    for k in range(4):
        model(paddle.randn([2, 1, 8, 8])).square().mean().backward()
        opt.step()
        opt.clear_grad()
        ema.update(model)
        d = min(0.9998, (1 + k) / (10 + k))
        expected = {key: d * expected[key] + (1 - d) * v.numpy() for key, v in model.state_dict().items()}
    for key, value in ema.state_dict().items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6, err_msg=key)
    resumed = ModelEma(model, 0.9998, warmup=True)
    resumed.set_state_dict(ema.state_dict(), updates=4)
    assert resumed.updates == 4


@pytest.mark.slow
def test_the_best_is_the_better_of_the_raw_and_the_averaged_weights(tmp_path):
    """A short EMA run (decay 0.9998, no warm-up): the raw weights score better, so they are the
    best, and eval and export take best.pdparams; --no-ema and the EMA file stay available."""
    import json

    from helpers import run_tool, train_ok

    out = tmp_path / "run"
    train_ok("-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={out}", "-o", "Global.max_steps=40",
             "-o", "Global.eval_every=20", "-o", "Model.ema_decay=0.9998", "-o", "Model.ema_warmup=false")
    evals = [line for line in (out / "train.log").read_text().splitlines() if "[Eval]" in line]
    raw, averaged = (float(evals[-1].split(f"{k}: ")[1].split(",")[0]) for k in ("top1", "ema_top1"))
    assert raw > averaged and f"best_top1: {raw:.2f}" in evals[-1]
    step = sorted(os.listdir(out / "checkpoints"))[-1]
    assert json.loads((out / "checkpoints" / step / "manifest.json").read_text())["best_ema"] is False
    res = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={out}")
    assert res.returncode == 0 and str(out / "best.pdparams") in res.stdout, res.stdout + res.stderr[-2000:]
    assert (out / "best_ema.pdparams").is_file()
