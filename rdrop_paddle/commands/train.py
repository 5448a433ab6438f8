"""Train: ``python tools/train.py -c CONFIG [-o Section.key=value ...]``.

A DeiT-style loop over optimizer steps: data parallel through fleet, R-Drop steps with
gradient accumulation, logging, evaluation, checkpoints that are whole or absent, exact
resume, SIGTERM and divergence handling.  Multi-card: ``python -m
paddle.distributed.launch --nproc_per_node N tools/train.py -c ...``; on several nodes
rank 0 alone reads and writes checkpoints, and the ranks agree or stop together
(:mod:`rdrop_paddle.engine.agreement`).
"""
from __future__ import annotations

import dataclasses
import math
import os

import paddle

from rdrop_paddle.commands.hub_weights import resolve_pretrained
from rdrop_paddle.commands.model import load_weights, set_weights, with_classes
from rdrop_paddle.config.load import load_config, save_config
from rdrop_paddle.config.schema import Config, resume_differences
from rdrop_paddle.cpu import configure_device
from rdrop_paddle.data import build_batch_op
from rdrop_paddle.data.loader import Loader
from rdrop_paddle.data.sampler import SampleStream, batch_plan
from rdrop_paddle.engine import agreement
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.checkpoint import CheckpointManager
from rdrop_paddle.engine.run_lock import lock_output
from rdrop_paddle.engine.ema import ModelEma
from rdrop_paddle.engine.evaluate import eval_loader, evaluate_run
from rdrop_paddle.engine.records import record_eval, recipe_notes
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler, recorded_accumulators
from rdrop_paddle.engine.step import TrainStep, finite_parameters
from rdrop_paddle.engine.stop import StopSignal
from rdrop_paddle.engine.train_state import check_checkpoint
from rdrop_paddle.errors import TrainingDiverged, UserInputError
from rdrop_paddle.io import digest
from rdrop_paddle.tasks import Task, task_of
from rdrop_paddle.utils.logger import Meter, ScalarWriter, setup_logger


@dataclasses.dataclass
class Run:
    """What a run steps: ``raw_model`` (whose weights are saved) and ``model`` (it, wrapped for data parallel)."""
    raw_model: paddle.nn.Layer
    model: paddle.nn.Layer
    step: TrainStep
    scheduler: paddle.optimizer.lr.LRScheduler
    ema: ModelEma | None = None


@dataclasses.dataclass
class Progress:
    """What a checkpoint records besides weights and optimizer state."""
    step: int = 0
    best_top1: float = -1.0
    best_step: int = 0
    position: int = 0  # samples of the training stream consumed (all cards together)
    best_ema: bool = False  # the best evaluation was the EMA's weights (better than the raw ones)


def build_run(cfg: Config, raw: paddle.nn.Layer, micro: int, accum: int, task: Task) -> Run:
    """Loss, optimizer, schedule and AMP around model ``raw``, wrapped for data parallel
    (a collective: every rank calls it, after :func:`agreement.together` checks)."""
    g = cfg.Global
    model = raw
    criterion = task.criterion(cfg)
    scheduler = build_scheduler(cfg.Optimizer, g.max_steps)
    optimizer = build_optimizer(cfg.Optimizer, raw, scheduler)
    if g.amp != "off" and g.amp_level == "O2":
        raw, optimizer = paddle.amp.decorate(raw, optimizer, level="O2",
                                             dtype="float16" if g.amp == "fp16" else "bfloat16")
        model = raw
    if dist.world_size() > 1:
        from paddle.distributed import fleet

        model = fleet.distributed_model(raw)
        optimizer = fleet.distributed_optimizer(optimizer)
    ema = ModelEma(raw, cfg.Model.ema_decay, cfg.Model.ema_warmup) if cfg.Model.ema_decay else None
    step = TrainStep(model, criterion, optimizer, scheduler, cfg.Loss.mode, accum, g.amp, g.amp_level,
                     distributed=dist.world_size() > 1, raw_model=raw, sync_by_hand=cfg.Model.recompute, ema=ema)
    step.standin_shape = [micro, raw.in_chans, cfg.Model.image_size, cfg.Model.image_size]
    return Run(raw, model, step, scheduler, ema)


def check_data(train_set, val_set, cfg: Config, micro: int = 1) -> None:
    """Both splits non-empty and a per-card batch of ``micro`` samples no larger than the training
    set (a larger one only repeats samples in one forward, and costs memory for nothing); the
    samples' shape is the task's check (:meth:`Task.datasets`)."""
    for split, ds in (("training", train_set), ("validation", val_set)):
        if len(ds) == 0:
            raise UserInputError(f"the {split} set is empty; nothing was written")
    if micro > len(train_set):
        raise UserInputError(f"Data.batch_size {cfg.Data.batch_size:,} gives {micro:,} samples per card and step, more "
                             f"than the {len(train_set):,} of the training set; lower it (nothing was written)")


def restore(run: Run, weights: dict, state: dict, path: str, cfg: Config, log) -> Progress:
    """Load checkpoint ``path`` (its ``weights`` and train ``state``, as rank 0 read them)
    into ``run``; refuse one made with another config."""
    try:
        changed = resume_differences(state["config"], cfg)
        saved_steps = state["config"]["Global"]["max_steps"]
        progress = Progress(**{"best_ema": run.ema is not None, **state["progress"]})  # (older runs: EMA best)
        if not all(isinstance(v, (int, float)) for v in dataclasses.astuple(progress)):
            raise TypeError(f"progress {state['progress']}")
    except (TypeError, KeyError, AttributeError) as e:
        raise UserInputError(f"cannot resume from {path}: its train.pdopt is not one this package "
                             f"wrote ({type(e).__name__}: {e})"[:400]) from None
    if changed:
        raise UserInputError(f"cannot resume from {path}: the config differs ({'; '.join(changed)}); "
                             f"restore those values or choose another Global.output_dir")
    if saved_steps != cfg.Global.max_steps:
        log.info(f"notice: Global.max_steps {saved_steps} -> {cfg.Global.max_steps}: the LR schedule "
                 f"is recomputed for the new length")
    set_weights(run.raw_model, weights, path, notice=log.info)
    try:
        run.step.set_state_dict(state)
        if run.ema is not None:
            run.ema.set_state_dict(state["ema"], progress.step)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserInputError(f"cannot resume from {path}: {e}"[:400]) from None
    return progress


def save(run: Run, ckpt: CheckpointManager, cfg: Config, progress: Progress, class_names: list[str]) -> None:
    """Checkpoint ``progress.step`` (main rank); non-finite weights are never saved."""
    if not finite_parameters(run.raw_model):
        raise TrainingDiverged(f"non-finite weights after step {progress.step} (Optimizer.lr "
                               f"{cfg.Optimizer.lr}); nothing was saved, earlier checkpoints are kept")
    if not dist.is_main():
        return
    state = {**run.step.state_dict(), "progress": dataclasses.asdict(progress), "config": cfg.to_dict()}
    ckpt.save(progress.step, run.raw_model.state_dict(), state, best_step=progress.best_step,
              ema=run.ema.state_dict() if run.ema else None, class_names=class_names,
              best_ema=progress.best_ema if run.ema else None)
    if progress.best_step == progress.step:
        ckpt.link_best(progress.step)
    ckpt.rotate(protect=(progress.best_step,))


def _origin(cfg: Config, ckpt: CheckpointManager, raw: paddle.nn.Layer) -> dict:
    """Rank 0's choice of where to start: the checkpoint ``Global.resume`` names (its
    weights and train state) or, for a new run, the model's weights as they are."""
    if ckpt.remove_stale():
        ckpt.notice("notice: removed the temporary files of a save that was interrupted")
    shapes = {k: tuple(v.shape) for k, v in raw.state_dict().items()}
    entries = recorded_accumulators(cfg.Optimizer)
    found = ckpt.resume_from(cfg.Global.resume, lambda *c: check_checkpoint(*c, shapes, entries))
    if found:
        path, weights, state = found
        return {"path": path, "weights": weights, "state": state}
    return {"path": "", "weights": {k: v.numpy() for k, v in raw.state_dict().items()}, "state": None}


def train(cfg: Config, datasets: tuple | None = None) -> dict:
    """Train per ``cfg``; returns the last evaluation, the best top-1 and, if SIGTERM or
    Ctrl-C stopped the run early, ``stopped_by`` (the signal's name).

    ``datasets``: ``(train, val)`` to use instead of the ones ``cfg.Data`` names.
    Everything that can be checked (model, pretrained weights, data, batch plan, and under
    data parallel that all ranks agree on them) is checked before ``Global.output_dir`` is
    created, so a refused run writes nothing.  Only rank 0 reads pretrained weights and
    checkpoints; the other ranks receive them (nodes need no shared storage).
    """
    g = cfg.Global
    if g.amp != "off" and g.device == "cpu":
        from rdrop_paddle.cpu.info import amp_on_cpu

        raise UserInputError(amp_on_cpu(g.amp))
    dist.init(g.device, g.setup_timeout)
    configure_device(g.device)
    with agreement.together():  # each rank checks what it has; a failure stops all of them
        cfg = resolve_pretrained(cfg, print if dist.is_main() else (lambda _: None), fetch=dist.is_main())
        plan = batch_plan(cfg.Data.batch_size, dist.world_size(), cfg.Optimizer.accum_steps,
                          cfg.Data.max_per_card_batch)
        task = task_of(cfg)
        train_set, val_set = datasets or task.datasets(cfg)
        cfg = with_classes(cfg, getattr(train_set, "class_names", []))
        dist.seed_everything(g.seed)  # identical initial weights on every rank
        raw = task.model(cfg)
        check_data(train_set, val_set, cfg, plan[0])
        prints = agreement.fingerprint(cfg, plan, (train_set, val_set), raw)
        fresh = g.resume in ("", "auto") and not CheckpointManager(g.output_dir, 1).has_run()
        if dist.is_main() and cfg.Model.pretrained and fresh:
            load_weights(raw, cfg.Model.pretrained)
    agreement.agree(prints)
    with agreement.together():
        lock = lock_output(g.output_dir, dist.is_main())
    try:
        return _train(cfg, task, raw, (train_set, val_set), *plan)
    finally:
        if lock:
            lock.release()


def _train(cfg: Config, task: Task, raw: paddle.nn.Layer, datasets: tuple, micro: int, accum: int) -> dict:
    g = cfg.Global
    log = setup_logger(g.output_dir, dist.is_main())
    ckpt = CheckpointManager(g.output_dir, g.keep_checkpoints, notice=log.info, writable=dist.is_main())
    origin = None
    with agreement.together():
        if dist.is_main():
            origin = _origin(cfg, ckpt, raw)
    origin = agreement.broadcast_tree(origin)  # rank 0's weights and state on every rank
    if origin["state"] is None and not dist.is_main():
        set_weights(raw, origin["weights"], "rank 0's initial weights")
    run = build_run(cfg, raw, micro, accum, task)
    with agreement.together():
        progress = Progress(best_top1=task.worst)
        if origin["state"] is not None:
            progress = restore(run, origin["weights"], origin["state"], origin["path"], cfg, log)
        if dist.is_main() and progress.best_step and not ckpt.restore_best(progress.best_step):
            progress.best_top1, progress.best_step = task.worst, 0
        if dist.is_main():
            save_config(cfg, os.path.join(g.output_dir, "config.yaml"))
            task.keep_files(cfg)
    train_set, val_set = datasets
    init_digest = digest(origin["weights"])  # of the weights this run starts from
    del origin  # the NumPy copies of weights and optimizer state are not kept while training
    stream = SampleStream(len(train_set), micro, g.seed, dist.rank(), dist.world_size(), progress.position)
    run.step.standin = getattr(train_set, "standin", None)  # text: a batch of its own
    loader = Loader(train_set, stream, cfg.Data.num_workers, batch_op=build_batch_op(cfg.Data, cfg.Model.num_classes))
    batches = iter(loader)
    val = eval_loader(val_set, cfg.Data.eval_batch_size, cfg.Data.num_workers)
    writer = ScalarWriter(os.path.join(g.output_dir, "vdl"), dist.is_main())
    start = progress.step
    log.info(f"{'resume at step ' + str(start) if start else 'train'} {cfg.Model.name} on "
             f"{cfg.Data.name}: {len(train_set)} train / {len(val_set)} val {task.samples}, global batch "
             f"{cfg.Data.batch_size} = {micro} x {accum} accum x {dist.world_size()} card(s), "
             f"alpha {cfg.Loss.alpha} ({cfg.Loss.convention}, {cfg.Loss.mode}), amp {g.amp}"
             + recipe_notes(cfg, train_set))
    stop = StopSignal(g.stop_timeout, lambda: f"; the newest checkpoint is step {(ckpt.steps() or ['none'])[-1]}")
    meter, last_eval, stopping = Meter(start, g.max_steps, cfg.Data.batch_size, g.print_mem_info), {}, False
    run.model.train()
    try:
        for step in range(start + 1, g.max_steps + 1):
            paddle.seed(dist.dropout_seed(g.seed, dist.rank(), step))
            local = run.step.accumulate(batches)
            logging_step = step % g.log_every == 0 or step == g.max_steps
            grad_norm = run.step.grad_norm() if logging_step else None
            summed = dist.all_reduce_sum(local + [float(bool(stop)), float(run.step.failure is not None),
                                                  float(len(loader.replaced))])
            if summed[4] > 0:  # a rank's data failed: every rank raises its error
                agreement.share_failure(run.step.failure)
            loss, ce, kl = (v / dist.world_size() for v in summed[:3])
            if not math.isfinite(loss) and run.step.scaler is None:
                run.step.discard()
                raise TrainingDiverged(f"non-finite loss {loss} at step {step}; nothing was saved, "
                                       f"the checkpoints in {g.output_dir} are kept as they were")
            if not math.isfinite(loss):
                log.info(f"step {step}: non-finite loss under fp16, the GradScaler skips this update")
            run.step.apply()
            progress.step, progress.position = step, progress.position + cfg.Data.batch_size
            meter.update(loss, ce, kl, run.step.reader_seconds)
            run.step.reader_seconds = 0.0
            if logging_step:
                meter.log(log, writer, step, run.scheduler.last_lr, grad_norm, run.step.loss_scale)
                if summed[5]:
                    log.info(f"notice: {int(summed[5])} unreadable image(s) replaced so far (Data.skip_bad_images), "
                             f"e.g. {(loader.replaced or ['on another rank'])[-1]}")
            stopping = summed[3] > 0
            new_best = False
            if step % g.eval_every == 0 or step == g.max_steps:
                metrics = evaluate_run(lambda model: task.evaluate(cfg, model, val, dist.is_main(), lambda: bool(stop)),
                                       run.model, run.raw_model, run.ema)
                stopping = stopping or metrics is None
                if metrics is not None:
                    new_best = record_eval(metrics, step, progress, log, writer, task.keys, task.outputs)
                    last_eval = metrics
            if stopping or new_best or step % g.save_every == 0 or step == g.max_steps:
                with agreement.together():
                    save(run, ckpt, cfg, progress, getattr(train_set, "class_names", []))
            if stopping:
                log.info(f"{stop.name or 'stop'}: saved step {step} to {g.output_dir}; resume with "
                         f"-o Global.resume=auto")
                break
        dist.barrier()
        if not stopping:
            log.info(f"done: best_{task.keys[0]}: {progress.best_top1:.2f}")
    finally:
        stop.close()
        batches.close()
        writer.close()
    return {**last_eval, "best_top1": progress.best_top1, "init_digest": init_digest,
            "checkpoint": ckpt.path(progress.step), "stopped_by": stop.name}


def run(args) -> int:
    """Exit status: 0, or 130 when Ctrl-C stopped the run (after saving)."""
    result = train(load_config(args.config, args.override))
    return 130 if result["stopped_by"] == "SIGINT" else 0
