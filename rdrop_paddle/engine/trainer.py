"""The training loop (DeiT-style ``train`` over steps): data parallel via fleet, logging,
evaluation, checkpoints, exact resume, SIGTERM and divergence handling."""
from __future__ import annotations

import math
import os
import signal
import time

import paddle

from rdrop_paddle.config import Config, save_config
from rdrop_paddle.engine import builders
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.checkpoint import CheckpointManager, load_state, load_weights
from rdrop_paddle.engine.evaluate import evaluate
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.engine.step import TrainStep
from rdrop_paddle.errors import TrainingDiverged, UserInputError
from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.utils.logger import ScalarWriter, setup_logger


def dropout_seed(seed: int, rank: int, step: int) -> int:
    """Seed of step ``step`` on ``rank``: dropout masks differ per rank and per step, and a
    resumed run draws exactly what an uninterrupted one would."""
    return ((seed * 1_000_003 + rank) * 1_000_003 + step) % (2 ** 62)


class _StopFlag:
    """Set by SIGTERM (a preempted script task): save at the next step boundary, exit 0."""

    def __init__(self) -> None:
        self.raised = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.raised = True


class _Meter:
    """Mean loss/ce/kl over the steps since the last log line, images/s and ETA."""

    def __init__(self, start: int, max_steps: int, batch_size: int) -> None:
        self.start, self.max_steps, self.batch_size = start, max_steps, batch_size
        self.last, self.sums = start, [0.0, 0.0, 0.0]
        self.t_start = self.t_last = time.perf_counter()

    def update(self, loss: float, ce: float, kl: float) -> None:
        self.sums = [s + v for s, v in zip(self.sums, (loss, ce, kl))]

    def flush(self, step: int) -> dict:
        """The window's means and throughput; starts a new window."""
        now, n = time.perf_counter(), step - self.last
        out = dict(zip(("loss", "ce", "kl"), (s / n for s in self.sums)))
        out["ips"] = n * self.batch_size / (now - self.t_last)
        out["eta"] = (now - self.t_start) / (step - self.start) * (self.max_steps - step)
        self.last, self.sums, self.t_last = step, [0.0, 0.0, 0.0], now
        return out


def _build_step(cfg: Config, accum: int, load_pretrained: bool) -> tuple:
    """``(net, model, scheduler, step_fn)``: ``net`` is the layer whose weights are saved,
    ``model`` what runs the forward (``net`` wrapped for data parallel on several ranks)."""
    g = cfg.Global
    builders.seed_everything(g.seed)  # identical initial weights on every rank
    net = model = builders.model_from_config(cfg)
    if cfg.Model.pretrained and load_pretrained:
        load_weights(net, cfg.Model.pretrained)
    criterion = RDropCrossEntropy(cfg.Loss.alpha, cfg.Loss.convention, cfg.Loss.kl_batch_size)
    scheduler = build_scheduler(cfg.Optimizer, g.max_steps)
    optimizer = build_optimizer(cfg.Optimizer, net.parameters(), scheduler)
    if g.amp != "off" and g.amp_level == "O2":
        net, optimizer = paddle.amp.decorate(net, optimizer, level="O2",
                                             dtype="float16" if g.amp == "fp16" else "bfloat16")
        model = net
    if dist.world_size() > 1:
        from paddle.distributed import fleet

        model = fleet.distributed_model(net)
        optimizer = fleet.distributed_optimizer(optimizer)
    step_fn = TrainStep(model, criterion, optimizer, scheduler, cfg.Loss.mode, accum, g.amp,
                        g.amp_level, distributed=dist.world_size() > 1)
    return net, model, scheduler, step_fn


def train(cfg: Config) -> dict:
    """Train per ``cfg``; returns the last evaluation and the best top-1."""
    g = cfg.Global
    if g.amp != "off" and g.device == "cpu":
        raise UserInputError(f"Global.amp {g.amp} needs Global.device gpu: Paddle's autocast and "
                             f"GradScaler do nothing on CPU")
    dist.init(g.device)
    os.makedirs(g.output_dir, exist_ok=True)
    log = setup_logger(g.output_dir, dist.is_main())
    ckpt = CheckpointManager(g.output_dir, g.keep_checkpoints)
    resume_from = ckpt.resume_path(g.resume)
    micro, accum = builders.batch_plan(cfg)
    train_set, val_set = builders.datasets(cfg)  # fail fast on missing data
    batches = builders.train_batches(cfg, train_set, micro)
    val_loader = builders.val_loader(cfg, val_set)

    net, model, scheduler, step_fn = _build_step(cfg, accum, load_pretrained=not resume_from)

    start, best = 0, -1.0
    if resume_from:
        state = load_state(resume_from)
        load_weights(net, resume_from[:-len(".pdopt")] + ".pdparams")
        step_fn.set_state_dict(state)
        start, best = int(state["step"]), float(state["best_top1"])
        batches.set_state_dict({"epoch": state["data"]["epoch"],
                                "consumed": state["data"]["global_batches"] * accum})
    if dist.is_main():
        save_config(cfg, os.path.join(g.output_dir, "config.yaml"))
    writer = ScalarWriter(os.path.join(g.output_dir, "vdl"), dist.is_main())
    log.info(f"{'resume at step ' + str(start) if start else 'train'} {cfg.Model.name} on "
             f"{cfg.Data.name}: {len(train_set)} train / {len(val_set)} val images, global batch "
             f"{cfg.Data.batch_size} = {micro} x {accum} accum x {dist.world_size()} card(s), "
             f"alpha {cfg.Loss.alpha} ({cfg.Loss.convention}, {cfg.Loss.mode}), amp {g.amp}")

    def save(step: int) -> None:
        if dist.is_main():
            data = {"epoch": batches.epoch, "global_batches": batches.consumed // accum}
            ckpt.save(step, net.state_dict(), {**step_fn.state_dict(), "step": step,
                                               "best_top1": best, "data": data})

    stop, last_eval = _StopFlag(), {}
    model.train()
    meter = _Meter(start, g.max_steps, cfg.Data.batch_size)
    for step in range(start + 1, g.max_steps + 1):
        paddle.seed(dropout_seed(g.seed, dist.rank(), step))
        local = step_fn.accumulate(batches)
        logging_step = step % g.log_every == 0 or step == g.max_steps
        grad_norm = step_fn.grad_norm() if logging_step else None
        summed = dist.all_reduce_sum(local + [float(stop.raised)])
        loss, ce, kl = (v / dist.world_size() for v in summed[:3])
        if not math.isfinite(loss) and step_fn.scaler is None:
            step_fn.discard()
            raise TrainingDiverged(f"non-finite loss {loss} at step {step}; the last checkpoint "
                                   f"in {g.output_dir} is kept as it was")
        if not math.isfinite(loss):
            log.info(f"step {step}: non-finite loss under fp16, the GradScaler skips this update")
        lr = scheduler.last_lr
        step_fn.apply()
        meter.update(loss, ce, kl)
        if logging_step:
            m, scale = meter.flush(step), step_fn.loss_scale
            log.info(f"step {step}/{g.max_steps} loss {m['loss']:.4f} ce {m['ce']:.4f} kl {m['kl']:.4f} "
                     f"lr {lr:.3e} grad_norm {grad_norm:.3f} ips {m['ips']:.1f} img/s eta {m['eta']:.0f}s"
                     + (f" loss_scale {scale:g}" if scale else ""))
            writer.add({f"train/{k}": m[k] for k in ("loss", "ce", "kl", "ips")}
                       | {"train/lr": lr, "train/grad_norm": grad_norm}
                       | ({"train/loss_scale": scale} if scale else {}), step)
        if step % g.eval_every == 0 or step == g.max_steps:
            last_eval = evaluate(model, val_loader, show_progress=dist.is_main())
            log.info(f"eval step {step}: top1 {last_eval['top1']:.2f} top5 "
                     f"{last_eval['top5']:.2f} loss {last_eval['loss']:.4f} best {max(best, last_eval['top1']):.2f}")
            writer.add({"eval/top1": last_eval["top1"], "eval/top5": last_eval["top5"],
                        "eval/loss": last_eval["loss"]}, step)
            if last_eval["top1"] > best:
                best = last_eval["top1"]
                if dist.is_main():
                    ckpt.save_best(net.state_dict())
        if summed[3] > 0:
            save(step)
            log.info(f"SIGTERM: saved step {step} to {g.output_dir}; resume with -o Global.resume=auto")
            break
        if step % g.save_every == 0 or step == g.max_steps:
            save(step)
    writer.close()
    dist.barrier()
    log.info(f"done: best top1 {best:.2f}")
    return {**last_eval, "best_top1": best}
