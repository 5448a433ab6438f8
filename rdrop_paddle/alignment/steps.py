"""Model-level alignment steps: forward, dropout sites, loss, backward, LR schedule, metric.

Each compares the Paddle side with a PyTorch reference (:mod:`.reference`) and records
both with ``reprod_log`` (:mod:`.report`).
"""
from __future__ import annotations

import numpy as np
import paddle
import torch

from rdrop_paddle.alignment import reference as ref
from rdrop_paddle.alignment.report import StepResult, record
from rdrop_paddle.config.schema import OptimizerConfig
from rdrop_paddle.convert import convert_state_dict
from rdrop_paddle.engine.evaluate import topk_correct
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.losses import RDropCrossEntropy, RDropLoss
from rdrop_paddle.models import build_model
from rdrop_paddle.losses.two_pass import rdrop_forward

VIT_B16 = dict(hidden=768, layers=12, heads=12)


def paddle_vit(model_name: str, torch_model, fmt: str, **kwargs):
    """The package ViT carrying the weights of a PyTorch model (through the direct converter)."""
    net = build_model(model_name, **kwargs)
    target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    state, _ = convert_state_dict(ref.state_of(torch_model), fmt, target)
    net.set_state_dict(state)
    return net


def forward(out_dir: str, image_size: int = 224, batch: int = 2) -> StepResult:
    """Eval-mode logits of ViT-B/16 vs HF transformers (and timm when installed)."""
    hf = ref.hf_vit(**VIT_B16, image=image_size, classes=100)
    net = paddle_vit("vit_base_patch16_224", hf, "hf", num_classes=100, image_size=image_size)
    net.eval()
    images = np.random.RandomState(0).randn(batch, 3, image_size, image_size).astype(np.float32)
    ours = {"logits_hf": net(paddle.to_tensor(images)).numpy()}
    theirs = {"logits_hf": ref.hf_logits(hf, images)}
    detail = f"ViT-B/16 {image_size}px, batch {batch}, vs HF transformers"
    try:
        import timm
    except ImportError:
        detail += "; timm not installed: timm comparison skipped"
    else:
        tm = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=100,
                               img_size=image_size).eval()
        net = paddle_vit("vit_base_patch16_224", tm, "timm", num_classes=100, image_size=image_size)
        net.eval()
        ours["logits_timm"] = net(paddle.to_tensor(images)).numpy()
        with torch.no_grad():
            theirs["logits_timm"] = tm(torch.from_numpy(images)).numpy()
        detail += " and timm"
    return StepResult("forward", record(out_dir, "forward", ours, theirs, 1e-5), 1e-5, detail)


def _dropouts_as_scales(paddle_model, torch_model) -> None:
    """Replace every dropout by a deterministic stand-in, ``x * (1 + p)``: identity where
    nothing is dropped, a rate-dependent scale at every real dropout site."""
    for layer in paddle_model.sublayers():
        if hasattr(layer, "p") and "Dropout" in type(layer).__name__:
            layer.forward = lambda x, p=float(layer.p): x * (1.0 + p)
    for module in torch_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.forward = lambda x, p=float(module.p): x * (1.0 + p)


def dropout_sites(out_dir: str, batch: int = 3) -> StepResult:
    """Train-mode outputs with every dropout replaced by a rate-dependent scale, vs the
    official ``vit_src`` structure: equal only if the dropout sites and rates are the same."""
    size = dict(hidden=64, layers=4, heads=4, mlp=256, image=8, patch=4, channels=1, classes=10)
    x = np.random.RandomState(4).randn(batch, 1, 8, 8).astype(np.float32)
    ours, theirs = {}, {}
    for name, ours_kw, official_kw in (
            ("official", {}, {}),  # dropout 0.1, attention 0.0: embeddings and MLP only
            ("attention_rate", {"attn_dropout": 0.05}, {"attention_dropout_rate": 0.05})):
        torch.manual_seed(0)
        official = ref.OfficialViT(**size, dropout_rate=0.1, **official_kw)
        net = paddle_vit("vit_nano_patch4_8", official, "rdrop", dropout=0.1, **ours_kw)
        _dropouts_as_scales(net, official)
        net.train()
        official.train()
        ours[name] = net(paddle.to_tensor(x)).numpy()
        with torch.no_grad():
            theirs[name] = official(torch.from_numpy(x)).numpy()
    diff = record(out_dir, "dropout_sites", ours, theirs, 1e-5)
    return StepResult("dropout_sites", diff, 1e-5, "train mode, each dropout replaced by x*(1+p), vs the "
                      "official vit_src structure: default rates, and attention_dropout_rate 0.05")


def loss(out_dir: str, alpha: float = 0.3) -> StepResult:
    """Both conventions and every RDropLoss reduction vs the official / paddlenlp formulas."""
    rng = np.random.RandomState(1)
    p_np, q_np = (rng.randn(16, 100).astype(np.float32) * 2 for _ in range(2))
    y_np = rng.randint(0, 100, 16)
    p, q, y = paddle.to_tensor(p_np), paddle.to_tensor(q_np), paddle.to_tensor(y_np)
    tp, tq, ty = torch.from_numpy(p_np), torch.from_numpy(q_np), torch.from_numpy(y_np)
    ours = {f"objective_{c}": RDropCrossEntropy(alpha, c)(p, q, y)["loss"].numpy()
            for c in ("readme", "vit_src")}
    theirs = {"objective_readme": ref.official_readme_loss(tp, tq, ty, alpha).numpy(),
              "objective_vit_src": ref.official_vit_src_loss(tp, tq, ty, alpha).numpy()}
    for red in ("none", "sum", "mean", "batchmean"):
        ours[f"rdrop_{red}"] = RDropLoss(red)(p, q).numpy()
        theirs[f"rdrop_{red}"] = ref.paddlenlp_rdrop_loss_torch(tp, tq, red).numpy()
    return StepResult("loss", record(out_dir, "loss", ours, theirs, 1e-6, relative=True), 1e-6,
                      "values / max(1, |torch value|); readme + vit_src objectives vs official code; "
                      "reductions vs paddlenlp's formula in torch")


def backward(out_dir: str, steps: int = 5, image_size: int = 64, batch: int = 4) -> StepResult:
    """SGD-momentum steps with clip 1.0 and warmup-cosine LR in the official order, dropout
    off, R-Drop vit_src loss: losses and every parameter after the steps."""
    hf = ref.hf_vit(**VIT_B16, image=image_size, classes=10)
    net = paddle_vit("vit_base_patch16_224", hf, "hf", num_classes=10, image_size=image_size, dropout=0.0)
    net.train()
    hf.train()
    cfg = OptimizerConfig(name="sgd", lr=1e-2, momentum=0.9, weight_decay=0.0, warmup_steps=2, grad_clip=1.0)
    sched = build_scheduler(cfg, steps)
    opt = build_optimizer(cfg, net, sched)
    t_opt = torch.optim.SGD(hf.parameters(), lr=1e-2, momentum=0.9, weight_decay=0.0)
    t_sched = ref.OfficialWarmupCosine(t_opt, warmup_steps=2, t_total=steps)
    crit = RDropCrossEntropy(0.3, "vit_src")
    rng = np.random.RandomState(2)
    ours, theirs = {}, {}
    for i in range(steps):
        x = rng.randn(batch, 3, image_size, image_size).astype(np.float32)
        y = rng.randint(0, 10, batch)
        out = rdrop_forward(net, crit, paddle.to_tensor(x), paddle.to_tensor(y), "concat")
        out["loss"].backward()
        sched.step()
        opt.step()
        opt.clear_grad()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        t_loss = ref.official_vit_src_loss(hf(pixel_values=tx).logits, hf(pixel_values=tx).logits, ty, 0.3)
        ours[f"loss_{i}"], theirs[f"loss_{i}"] = out["loss"].numpy(), t_loss.detach().numpy()
        ref.official_update(hf, t_opt, t_sched, t_loss)
    target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    final, _ = convert_state_dict(ref.state_of(hf), "hf", target)
    for k, v in net.state_dict().items():
        ours[f"param_{k}"], theirs[f"param_{k}"] = v.numpy(), final[k]
    return StepResult("backward", record(out_dir, "backward", ours, theirs, 1e-5, relative=True),
                      1e-5, f"ViT-B/16 width/depth at {image_size}px, batch {batch}, {steps} steps: "
                      f"losses and all parameters, values / max(1, |torch value|)")


def lr_schedule(out_dir: str, max_steps: int = 10000, warmup: int = 500) -> StepResult:
    """The LR of each of the recipe's 10k updates vs the official schedule and loop order."""
    sched = build_scheduler(OptimizerConfig(lr=1e-2, warmup_steps=warmup), max_steps)
    t_param = torch.nn.Linear(1, 1, bias=False)
    t_opt = torch.optim.SGD(t_param.parameters(), lr=1e-2)
    t_sched = ref.OfficialWarmupCosine(t_opt, warmup_steps=warmup, t_total=max_steps)
    ours, theirs = [], []
    for _ in range(max_steps):
        sched.step()  # TrainStep.apply: the schedule first, then the optimizer
        ours.append(sched.last_lr)
        theirs.append(ref.official_update(t_param, t_opt, t_sched, t_param.weight.sum()))
    return StepResult("lr", record(out_dir, "lr", {"lr": np.array(ours)}, {"lr": np.array(theirs)}, 1e-12),
                      1e-12, f"{max_steps} updates, {warmup} warm-up, official loop order")


def metric(out_dir: str) -> StepResult:
    """Top-1/top-5 counts on a fixed batch vs torch.topk."""
    rng = np.random.RandomState(3)
    logits, labels = rng.randn(256, 100).astype(np.float32), rng.randint(0, 100, 256)
    ours = {"topk": np.array(topk_correct(logits, labels))}
    theirs = {"topk": np.array(ref.official_topk(torch.from_numpy(logits), torch.from_numpy(labels)))}
    return StepResult("metric", record(out_dir, "metric", ours, theirs, 0.0), 0.0,
                      f"256 samples, 100 classes: top1/top5 hits {ours['topk'].tolist()}")
