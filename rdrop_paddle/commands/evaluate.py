"""Evaluate a checkpoint: ``python tools/eval.py -c CONFIG [-o Model.pretrained=PATH]``.

Without ``Model.pretrained`` it evaluates ``Global.output_dir/best.pdparams``; the last
line printed is ``top1: X, top5: Y`` and ``Global.output_dir/metrics.json`` is written
(strict JSON).  Under ``paddle.distributed.launch`` rank 0 alone reads the weights (other
nodes need no copy) and the validation set is sharded.  Weights that give non-finite logits are an error, not a result.
"""
from __future__ import annotations

import math
import os

from rdrop_paddle.commands.model import load_weights, model_from_config
from rdrop_paddle.config import Config, load_config
from rdrop_paddle.cpu import configure_device
from rdrop_paddle.data import build_datasets, check_input_shape
from rdrop_paddle.engine import agreement
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.evaluate import eval_loader, evaluate
from rdrop_paddle.errors import TrainingDiverged
from rdrop_paddle.io import make_folder, write_json


def evaluate_checkpoint(cfg: Config) -> dict:
    """Load ``Model.pretrained`` (default ``output_dir/best.pdparams``) and evaluate it."""
    dist.init(cfg.Global.device, cfg.Global.setup_timeout)
    configure_device(cfg.Global.device)
    path = cfg.Model.pretrained or os.path.join(cfg.Global.output_dir, "best.pdparams")
    weights = None
    with agreement.together():  # rank 0 alone reads the weights; a failing rank stops all
        model = model_from_config(cfg.Model)
        if dist.is_main():
            make_folder(cfg.Global.output_dir, "Global.output_dir", create=False)  # before evaluating
            load_weights(model, path)
            if dist.world_size() > 1:
                weights = {k: v.numpy() for k, v in model.state_dict().items()}
        _, val_set = build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes)
        check_input_shape(val_set, model.in_chans, cfg.Model.image_size, cfg.Model.name)
    weights = agreement.broadcast_tree(weights)
    if not dist.is_main():
        model.set_state_dict(weights)
    metrics = evaluate(model, eval_loader(val_set, cfg.Data.eval_batch_size, cfg.Data.num_workers),
                       show_progress=dist.is_main())
    if not all(math.isfinite(metrics[k]) for k in ("top1", "top5", "loss")):
        raise TrainingDiverged(f"{path} gives non-finite logits (loss {metrics['loss']}): "
                               f"its weights are not usable; nothing was written")
    metrics["checkpoint"] = path
    if dist.is_main():
        make_folder(cfg.Global.output_dir, "Global.output_dir")
        write_json(metrics, os.path.join(cfg.Global.output_dir, "metrics.json"))
        print(f"eval {cfg.Model.name} on {cfg.Data.name} ({metrics['count']} images) from {path}")
        print(f"top1: {metrics['top1']:.2f}, top5: {metrics['top5']:.2f}")
    return metrics


def run(args) -> None:
    evaluate_checkpoint(load_config(args.config, args.override))
