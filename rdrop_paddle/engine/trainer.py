"""The training loop: R-Drop steps, data parallel via fleet, logging, eval and checkpoints."""
from __future__ import annotations

import contextlib
import math
import os
import time

import paddle

from rdrop_paddle.config import Config, save_config
from rdrop_paddle.engine import builders
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.checkpoint import load_weights, save_atomic
from rdrop_paddle.engine.evaluate import evaluate
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.errors import TrainingDiverged
from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.utils.logger import ScalarWriter, setup_logger


def forward_loss(model, criterion: RDropCrossEntropy, images, labels, mode: str) -> dict:
    """One R-Drop forward: ``concat`` runs ``[x; x]`` once, ``twice`` runs ``x`` two times."""
    if not criterion.needs_two_passes:
        return criterion(model(images), None, labels)
    if mode == "concat":
        p, q = paddle.chunk(model(paddle.concat([images, images], axis=0)), 2, axis=0)
    else:
        p, q = model(images), model(images)
    return criterion(p, q, labels)


def _batches(loader, sampler, seed: int):
    """Endless iterator; each epoch reshuffles (order depends on ``seed`` and the epoch)."""
    epoch = 0
    while True:
        sampler.set_epoch(seed * 1000003 + epoch)
        yield from loader
        epoch += 1


def train(cfg: Config) -> dict:
    """Train per ``cfg``; returns the last evaluation and the best top-1."""
    g = cfg.Global
    dist.init(g.device)
    os.makedirs(g.output_dir, exist_ok=True)
    log = setup_logger(g.output_dir, dist.is_main())
    if dist.is_main():
        save_config(cfg, os.path.join(g.output_dir, "config.yaml"))

    train_set, val_set = builders.datasets(cfg)  # fail fast on missing data
    loader, sampler = builders.train_loader(cfg, train_set)
    val_loader = builders.val_loader(cfg, val_set)
    builders.seed_everything(g.seed)  # identical initial weights on every rank
    net = model = builders.model_from_config(cfg)
    if cfg.Model.pretrained:
        load_weights(net, cfg.Model.pretrained)
    paddle.seed(g.seed + dist.rank())  # per-rank dropout masks
    criterion = RDropCrossEntropy(cfg.Loss.alpha, cfg.Loss.convention)
    scheduler = build_scheduler(cfg.Optimizer, g.max_steps)
    optimizer = build_optimizer(cfg.Optimizer, model.parameters(), scheduler)
    if dist.world_size() > 1:
        from paddle.distributed import fleet

        model = fleet.distributed_model(model)
        optimizer = fleet.distributed_optimizer(optimizer)

    writer = ScalarWriter(os.path.join(g.output_dir, "vdl"), dist.is_main())
    log.info(f"train {cfg.Model.name} on {cfg.Data.name}: {len(train_set)} train / "
             f"{len(val_set)} val images, {dist.world_size()} card(s), global batch "
             f"{cfg.Data.batch_size} = {builders.micro_batch_size(cfg)} x "
             f"{cfg.Optimizer.accum_steps} accum x {dist.world_size()} cards, "
             f"alpha {cfg.Loss.alpha} ({cfg.Loss.convention}, {cfg.Loss.mode})")
    accum = cfg.Optimizer.accum_steps
    batches = _batches(loader, sampler, g.seed)
    best, last_eval = -1.0, {}
    model.train()
    t_start = t_window = time.perf_counter()
    for step in range(1, g.max_steps + 1):
        sums = [0.0, 0.0, 0.0]
        for i in range(accum):
            images, labels = next(batches)
            sync = i == accum - 1 or dist.world_size() == 1
            with (contextlib.nullcontext() if sync else model.no_sync()):
                out = forward_loss(model, criterion, images, labels, cfg.Loss.mode)
                (out["loss"] / accum).backward()
            sums = [s + float(out[k]) / accum for s, k in zip(sums, ("loss", "ce", "kl"))]
        loss, ce, kl = (v / dist.world_size() for v in dist.all_reduce_sum(sums))
        if not math.isfinite(loss):
            raise TrainingDiverged(f"non-finite loss {loss} at step {step}; the last checkpoint "
                                   f"in {g.output_dir} is kept as it was")
        lr = scheduler.last_lr
        optimizer.step()
        optimizer.clear_grad()
        scheduler.step()
        if step % g.log_every == 0 or step == g.max_steps:
            now = time.perf_counter()
            n_steps = g.log_every if step % g.log_every == 0 else step % g.log_every
            ips = n_steps * cfg.Data.batch_size / (now - t_window)
            eta = (now - t_start) / step * (g.max_steps - step)
            t_window = now
            log.info(f"step {step}/{g.max_steps} loss {loss:.4f} ce {ce:.4f} kl {kl:.4f} "
                     f"lr {lr:.3e} ips {ips:.1f} img/s eta {eta:.0f}s")
            writer.add({"train/loss": loss, "train/ce": ce, "train/kl": kl, "train/lr": lr,
                        "train/ips": ips}, step)
        if step % g.eval_every == 0 or step == g.max_steps:
            last_eval = evaluate(model, val_loader)
            improved = last_eval["top1"] > best
            best = max(best, last_eval["top1"])
            log.info(f"eval step {step}: top1 {last_eval['top1']:.2f} top5 "
                     f"{last_eval['top5']:.2f} loss {last_eval['loss']:.4f} best {best:.2f}")
            writer.add({"eval/top1": last_eval["top1"], "eval/top5": last_eval["top5"],
                        "eval/loss": last_eval["loss"]}, step)
            if improved and dist.is_main():
                save_atomic(net.state_dict(), os.path.join(g.output_dir, "best.pdparams"))
        if (step % g.save_every == 0 or step == g.max_steps) and dist.is_main():
            save_atomic(net.state_dict(), os.path.join(g.output_dir, "latest.pdparams"))
            save_atomic({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "step": step}, os.path.join(g.output_dir, "latest.pdopt"))
    writer.close()
    dist.barrier()
    log.info(f"done: best top1 {best:.2f}")
    return {**last_eval, "best_top1": best}
