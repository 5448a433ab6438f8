"""The five alignment steps of the Paddle reproduction guide, each against PyTorch.

Every step records both sides with ``reprod_log`` (``{step}_paddle.npy``,
``{step}_torch.npy``) and writes its diff report (``{step}_diff.txt``) under ``out_dir``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import paddle
import torch

from rdrop_paddle.alignment import reference as ref
from rdrop_paddle.config import OptimizerConfig
from rdrop_paddle.convert import convert_state_dict
from rdrop_paddle.engine.evaluate import topk_correct
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.engine.step import forward_loss
from rdrop_paddle.losses import RDropCrossEntropy, RDropLoss
from rdrop_paddle.models import build_model

VIT_B16 = dict(hidden=768, layers=12, heads=12)


@dataclass
class StepResult:
    step: str
    max_diff: float
    threshold: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.max_diff <= self.threshold


def _record(out_dir: str, step: str, paddle_side: dict, torch_side: dict, threshold: float,
            relative: bool = False) -> float:
    """Save both sides with reprod_log, write the diff report, return the max abs diff.

    With ``relative`` both sides are first divided by ``max(1, |torch value|)``, so that
    large sums are compared at float32's relative precision (files and report alike).
    """
    import contextlib
    import io
    import logging

    from reprod_log import ReprodDiffHelper, ReprodLogger

    if relative:
        scale = {k: np.maximum(1.0, np.abs(np.asarray(v, np.float64))) for k, v in torch_side.items()}
        paddle_side = {k: np.asarray(v, np.float64) / scale[k] for k, v in paddle_side.items()}
        torch_side = {k: np.asarray(v, np.float64) / scale[k] for k, v in torch_side.items()}
    paths = {}
    for side, data in (("paddle", paddle_side), ("torch", torch_side)):
        logger = ReprodLogger()
        for key, value in data.items():
            logger.add(key, np.asarray(value, dtype=np.float64).reshape(np.shape(value) or (1,)))
        paths[side] = os.path.join(out_dir, f"{step}_{side}.npy")
        logger.save(paths[side])
    helper = ReprodDiffHelper()
    helper.compare_info(helper.load_info(paths["paddle"]), helper.load_info(paths["torch"]))
    root, before = logging.getLogger("root"), set(logging.getLogger("root").handlers)
    with contextlib.redirect_stdout(io.StringIO()):  # reprod_log also echoes to stdout
        helper.report(diff_method="max", diff_threshold=threshold,
                      path=os.path.join(out_dir, f"{step}_diff.txt"))
    for handler in set(root.handlers) - before:  # it adds handlers on every call
        root.removeHandler(handler)
        handler.close()
    return max(float(np.max(np.abs(np.asarray(paddle_side[k], np.float64)
                                   - np.asarray(torch_side[k], np.float64)))) for k in paddle_side)


def paddle_vit_from_hf(model_name: str, hf_model, num_classes: int, image_size: int):
    """The package ViT carrying the weights of ``hf_model`` (through the direct converter)."""
    net = build_model(model_name, num_classes=num_classes, image_size=image_size, dropout=0.0)
    target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    state, _ = convert_state_dict(ref.hf_state(hf_model), "hf", target)
    net.set_state_dict(state)
    return net


def forward(out_dir: str, image_size: int = 224, batch: int = 2) -> StepResult:
    """Eval-mode logits of ViT-B/16 vs HF transformers (and timm when installed)."""
    hf = ref.hf_vit(**VIT_B16, image=image_size, classes=100)
    net = paddle_vit_from_hf("vit_base_patch16_224", hf, 100, image_size)
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
        target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        state, _ = convert_state_dict({k: v.numpy() for k, v in tm.state_dict().items()}, "timm", target)
        net.set_state_dict(state)
        ours["logits_timm"] = net(paddle.to_tensor(images)).numpy()
        with torch.no_grad():
            theirs["logits_timm"] = tm(torch.from_numpy(images)).numpy()
        detail += " and timm"
    return StepResult("forward", _record(out_dir, "forward", ours, theirs, 1e-5), 1e-5, detail)


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
    try:
        from paddlenlp.losses import RDropLoss as PaddleNLPRDropLoss
        detail = "reductions vs paddlenlp.losses.RDropLoss"
    except Exception as e:  # paddlenlp 2.8 fails to import with current huggingface_hub
        PaddleNLPRDropLoss = None
        detail = f"paddlenlp not importable ({type(e).__name__}): its formula transcribed to torch"
    for red in ("none", "sum", "mean", "batchmean"):
        ours[f"rdrop_{red}"] = RDropLoss(red)(p, q).numpy()
        theirs[f"rdrop_{red}"] = (PaddleNLPRDropLoss(red)(p, q).numpy() if PaddleNLPRDropLoss
                                  else ref.paddlenlp_rdrop_loss_torch(tp, tq, red).numpy())
    return StepResult("loss", _record(out_dir, "loss", ours, theirs, 1e-6, relative=True), 1e-6,
                      "values / max(1, |torch value|); readme + vit_src objectives vs official code; " + detail)


def backward(out_dir: str, steps: int = 5, image_size: int = 64, batch: int = 4) -> StepResult:
    """SGD-momentum steps with clip 1.0 and warmup-cosine LR, dropout off, R-Drop vit_src loss."""
    hf = ref.hf_vit(**VIT_B16, image=image_size, classes=10)
    net = paddle_vit_from_hf("vit_base_patch16_224", hf, 10, image_size)
    net.train()
    hf.train()
    cfg = OptimizerConfig(name="sgd", lr=1e-2, momentum=0.9, weight_decay=0.0, warmup_steps=2,
                          grad_clip=1.0)
    sched = build_scheduler(cfg, steps)
    opt = build_optimizer(cfg, net.parameters(), sched)
    t_opt = torch.optim.SGD(hf.parameters(), lr=1e-2, momentum=0.9, weight_decay=0.0)
    t_sched = ref.OfficialWarmupCosine(t_opt, warmup_steps=2, t_total=steps)
    crit = RDropCrossEntropy(0.3, "vit_src")
    rng = np.random.RandomState(2)
    ours, theirs = {}, {}
    for i in range(steps):
        x = rng.randn(batch, 3, image_size, image_size).astype(np.float32)
        y = rng.randint(0, 10, batch)
        out = forward_loss(net, crit, paddle.to_tensor(x), paddle.to_tensor(y), "concat")
        out["loss"].backward()
        opt.step()
        opt.clear_grad()
        sched.step()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        t_loss = ref.official_vit_src_loss(hf(pixel_values=tx).logits, hf(pixel_values=tx).logits, ty, 0.3)
        t_loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        t_opt.step()
        t_sched.step()
        t_opt.zero_grad()
        ours[f"loss_{i}"], theirs[f"loss_{i}"] = out["loss"].numpy(), t_loss.detach().numpy()
    target = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    final, _ = convert_state_dict(ref.hf_state(hf), "hf", target)
    for k, v in net.state_dict().items():
        ours[f"param_{k}"], theirs[f"param_{k}"] = v.numpy(), final[k]
    return StepResult("backward", _record(out_dir, "backward", ours, theirs, 1e-5, relative=True),
                      1e-5, f"ViT-B/16 width/depth at {image_size}px, batch {batch}, {steps} steps: "
                      f"losses and all parameters, values / max(1, |torch value|)")


def lr_schedule(out_dir: str, max_steps: int = 10000, warmup: int = 500) -> StepResult:
    """Every LR of the recipe's 10k-step run vs the official WarmupCosineSchedule."""
    sched = build_scheduler(OptimizerConfig(lr=1e-2, warmup_steps=warmup), max_steps)
    t_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-2)
    t_sched = ref.OfficialWarmupCosine(t_opt, warmup_steps=warmup, t_total=max_steps)
    ours, theirs = [], []
    for _ in range(max_steps):
        ours.append(sched.last_lr)
        theirs.append(t_opt.param_groups[0]["lr"])
        sched.step()
        t_sched.step()
    return StepResult("lr", _record(out_dir, "lr", {"lr": np.array(ours)}, {"lr": np.array(theirs)}, 1e-12),
                      1e-12, f"{max_steps} steps, {warmup} warm-up")


def metric(out_dir: str) -> StepResult:
    """Top-1/top-5 counts on a fixed batch vs torch.topk."""
    rng = np.random.RandomState(3)
    logits, labels = rng.randn(256, 100).astype(np.float32), rng.randint(0, 100, 256)
    ours = {"topk": np.array(topk_correct(logits, labels))}
    theirs = {"topk": np.array(ref.official_topk(torch.from_numpy(logits), torch.from_numpy(labels)))}
    return StepResult("metric", _record(out_dir, "metric", ours, theirs, 0.0), 0.0,
                      f"256 samples, 100 classes: top1/top5 hits {ours['topk'].tolist()}")


STEPS = {"forward": forward, "loss": loss, "backward": backward, "lr": lr_schedule, "metric": metric}


def format_table(results: list[StepResult]) -> str:
    lines = [f"{'step':<9} {'max diff':>10} {'threshold':>10}  result  detail"]
    for r in results:
        lines.append(f"{r.step:<9} {r.max_diff:>10.2e} {r.threshold:>10.0e}  "
                     f"{'pass' if r.passed else 'FAIL':<6}  {r.detail}")
    return "\n".join(lines)
