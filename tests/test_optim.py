"""Optimizer: weight decay on weight matrices only (timm, DeiT), and optimizer state that loads
into a model built anywhere (structured names, not Paddle's generated ones)."""
import numpy as np
import paddle
import pytest

from rdrop_paddle.config import OptimizerConfig
from rdrop_paddle.engine.optim import (build_optimizer, build_scheduler, load_optimizer_state,
                                       no_weight_decay, optimizer_state)
from rdrop_paddle.io import load_paddle, save_paddle
from rdrop_paddle.models import build_model

EXEMPT = ("pos_embed", "cls_token", ".bias", "norm1.weight", "norm2.weight", "norm.weight")


def _model(seed=0):
    paddle.seed(seed)
    return build_model("vit_nano_patch4_8", dropout=0.0)


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_decay_skips_biases_norms_and_embeddings(name):
    """With zero gradients the only change is decay: p -> p * (1 - lr * wd) where it applies."""
    model = _model()
    cfg = OptimizerConfig(name=name, lr=0.1, weight_decay=0.5, warmup_steps=0, schedule="constant", grad_clip=0)
    opt = build_optimizer(cfg, model, build_scheduler(cfg, 10))
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    (sum(p.sum() for p in model.parameters()) * 0.0).backward()
    opt.step()
    for n, p in model.named_parameters():
        exempt = n.endswith(EXEMPT) or n in ("pos_embed", "cls_token")
        assert exempt == no_weight_decay(n, p), n
        expected = before[n] if exempt else before[n] * (1 - 0.1 * 0.5)
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=n)


def test_optimizer_state_loads_across_generated_names(tmp_path):
    cfg = OptimizerConfig(name="adamw", lr=0.01, warmup_steps=0, schedule="constant")
    x = paddle.randn([4, 1, 8, 8])

    def step(model, opt):
        model(x).sum().backward()
        opt.step()
        opt.clear_grad()

    a = _model()
    opt_a = build_optimizer(cfg, a, build_scheduler(cfg, 10))
    step(a, opt_a)
    save_paddle(optimizer_state(opt_a, a), str(tmp_path / "opt.pdopt"))  # as a checkpoint does
    state = load_paddle(str(tmp_path / "opt.pdopt"))
    assert any(k.startswith("blocks.0.attn.qkv.weight_") for k in state), list(state)[:5]
    for _ in range(3):
        paddle.nn.Linear(2, 2)  # shifts Paddle's generated parameter names
    b = _model(seed=5)
    b.set_state_dict(a.state_dict())
    opt_b = build_optimizer(cfg, b, build_scheduler(cfg, 10))
    assert [p.name for p in b.parameters()] != [p.name for p in a.parameters()]
    load_optimizer_state(opt_b, b, state)
    step(a, opt_a)
    step(b, opt_b)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=n)
    with pytest.raises(ValueError, match="belongs to no parameter"):
        load_optimizer_state(opt_b, b, {"head.weightless_moment1_0": np.zeros(1)})
