"""Evaluate a checkpoint: ``python tools/eval.py -c CONFIG [-o Model.pretrained=PATH] [--per-class]``.

Without ``Model.pretrained`` (or when ``Global.output_dir`` holds a trained run: the run wins,
with a notice naming both) it evaluates ``Global.output_dir/best_ema.pdparams`` if the run
kept an EMA (``--no-ema``: ``best.pdparams``), else ``best.pdparams``; the last line printed
is ``top1: X, top5: Y`` (a regression model: ``pearson: X, spearman: Y``) and ``Global.output_dir/metrics.json`` is written (strict JSON, with
the class names and, with ``--per-class``, each class's accuracy, also printed as a table).  Under ``paddle.distributed.launch`` rank 0 alone reads the weights (other
nodes need no copy) and the validation set is sharded.  Weights that give non-finite logits are an error, not a result.
"""
from __future__ import annotations

import math
import os

from rdrop_paddle.commands.hub_weights import resolve_pretrained
from rdrop_paddle.commands.model import best_weights, load_weights, prefer_the_run, with_classes
from rdrop_paddle.config.load import load_config
from rdrop_paddle.config.schema import Config
from rdrop_paddle.cpu import configure_device
from rdrop_paddle.engine import agreement
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.evaluate import eval_loader
from rdrop_paddle.errors import TrainingDiverged
from rdrop_paddle.io import make_folder, write_json
from rdrop_paddle.tasks import task_of


def evaluate_checkpoint(cfg: Config, per_class: bool = False, no_ema: bool = False) -> dict:
    """Load ``Model.pretrained`` (default: the run's best weights) and evaluate it."""
    dist.init(cfg.Global.device, cfg.Global.setup_timeout)
    configure_device(cfg.Global.device)
    say = print if dist.is_main() else (lambda _: None)
    cfg = prefer_the_run(resolve_pretrained(cfg, notice=say, fetch=dist.is_main()), notice=say)
    task = task_of(cfg)
    path = best_weights(cfg, no_ema)
    weights = None
    with agreement.together():  # rank 0 alone reads the weights; a failing rank stops all
        _, val_set = task.datasets(cfg)
        cfg = with_classes(cfg, val_set.class_names)
        model = task.model(cfg)
        if dist.is_main():
            make_folder(cfg.Global.output_dir, "Global.output_dir", create=False)  # before evaluating
            load_weights(model, path)
            if dist.world_size() > 1:
                weights = {k: v.numpy() for k, v in model.state_dict().items()}
    weights = agreement.broadcast_tree(weights)
    if not dist.is_main():
        model.set_state_dict(weights)
    metrics = task.evaluate(cfg, model, eval_loader(val_set, cfg.Data.eval_batch_size, cfg.Data.num_workers),
                            show_progress=dist.is_main(), per_class=per_class)
    if not all(math.isfinite(metrics[k]) for k in (*task.keys, "loss")):
        raise TrainingDiverged(f"{path} gives non-finite {task.outputs} (loss {metrics['loss']}): "
                               f"its weights are not usable; nothing was written")
    names = val_set.class_names or [str(i) for i in range(cfg.Model.num_classes)]
    metrics["checkpoint"], metrics["class_names"] = path, names
    if per_class and "per_class" in metrics:
        metrics["per_class"] = [{"class": c, "name": names[c] if c < len(names) else str(c), "top1": 100.0 * h / n,
                                 "count": n} for c, (h, n) in enumerate(metrics["per_class"]) if n]
    if dist.is_main():
        make_folder(cfg.Global.output_dir, "Global.output_dir")
        write_json(metrics, os.path.join(cfg.Global.output_dir, "metrics.json"))
        print(f"eval {cfg.Model.name} on {cfg.Data.name} ({metrics['count']} {task.samples}) from {path}")
        if per_class and "per_class" in metrics:
            print(f"| class | name | {task.samples} | top1 |\n| --- | --- | --- | --- |")
            for row in metrics["per_class"]:
                print(f"| {row['class']} | {row['name']} | {row['count']} | {row['top1']:.2f} |")
        print(task.summary(metrics))
    return metrics


def run(args) -> None:
    evaluate_checkpoint(load_config(args.config, args.override), args.per_class, args.no_ema)
