"""The R-Drop train step: concat and twice agree without dropout; the LR schedule; top-k."""
import math

import numpy as np
import paddle
import pytest

from rdrop_paddle.engine.evaluate import topk_correct
from rdrop_paddle.engine.optim import warmup_cosine
from rdrop_paddle.losses.two_pass import rdrop_forward
from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.models import build_model


def _batch():
    rng = np.random.RandomState(0)
    return (paddle.to_tensor(rng.randn(6, 1, 8, 8).astype("float32")),
            paddle.to_tensor(rng.randint(0, 10, 6)))


@pytest.mark.parametrize("convention", ["readme", "vit_src"])
def test_concat_and_twice_agree_without_dropout(convention):
    paddle.seed(0)
    model = build_model("vit_nano_patch4_8", dropout=0.0)
    model.train()
    crit = RDropCrossEntropy(0.3, convention)
    x, y = _batch()
    outs = {}
    for mode in ("concat", "twice"):
        out = rdrop_forward(model, crit, x, y, mode)
        out["loss"].backward()
        outs[mode] = (out["loss"].item(), model.head.weight.grad.numpy().copy())
        model.clear_gradients()
    np.testing.assert_allclose(outs["concat"][0], outs["twice"][0], rtol=1e-6)
    np.testing.assert_allclose(outs["concat"][1], outs["twice"][1], rtol=1e-5, atol=1e-6)
    # Without dropout both passes are equal: KL is 0 and the loss is CE (x2 for vit_src).
    base = rdrop_forward(model, RDropCrossEntropy(0.0), x, y, "concat")["loss"].item()
    np.testing.assert_allclose(outs["concat"][0], base * (2 if convention == "vit_src" else 1),
                               rtol=1e-5)


def test_two_dropout_passes_give_positive_kl():
    paddle.seed(0)
    model = build_model("vit_nano_patch4_8", dropout=0.2)
    model.train()
    x, y = _batch()
    for mode in ("concat", "twice"):
        assert rdrop_forward(model, RDropCrossEntropy(0.3), x, y, mode)["kl"].item() > 0


def test_warmup_cosine_by_hand():
    assert warmup_cosine(0, 500, 10000) == 0.0
    assert warmup_cosine(250, 500, 10000) == 0.5
    assert warmup_cosine(500, 500, 10000) == 1.0
    assert warmup_cosine(5250, 500, 10000) == pytest.approx(0.5)
    assert warmup_cosine(10000, 500, 10000) == pytest.approx(0.0, abs=1e-15)
    assert warmup_cosine(2875, 500, 10000) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_topk_counts_by_hand():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([1, 2, 0])
    # row 0: label is top-1; row 1: tie 0.1/0.1 goes to the lower index, so label 2 is third;
    # row 2: label 0 is third. k larger than the class count means "any class".
    assert topk_correct(logits, labels, ks=(1, 2, 3, 5)) == [1, 1, 3, 3]


def test_vit_src_equals_readme_at_twice_the_lr_and_half_the_clip():
    """The factor of 2 between conventions: vit_src(alpha, lr, clip) == readme(alpha, 2 lr, clip / 2).

    readme's loss, hence its gradient, is half of vit_src's at the same alpha.
    """
    from rdrop_paddle.config import OptimizerConfig
    from rdrop_paddle.engine.optim import build_optimizer, build_scheduler

    x, y = _batch()
    finals = []
    for convention, scale in (("vit_src", 1.0), ("readme", 2.0)):
        paddle.seed(0)
        model = build_model("vit_nano_patch4_8", dropout=0.1)
        cfg = OptimizerConfig(name="sgd", lr=0.05 * scale, grad_clip=0.5 / scale, warmup_steps=0)
        sched = build_scheduler(cfg, 10)
        opt = build_optimizer(cfg, model, sched)
        crit = RDropCrossEntropy(0.3, convention)
        for step in range(3):
            paddle.seed(100 + step)  # the same dropout masks in both runs
            rdrop_forward(model, crit, x, y, "concat")["loss"].backward()
            opt.step()
            opt.clear_grad()
            sched.step()
        finals.append({k: v.numpy() for k, v in model.state_dict().items()})
    for k in finals[0]:
        np.testing.assert_allclose(finals[0][k], finals[1][k], rtol=1e-5, atol=1e-6, err_msg=k)
