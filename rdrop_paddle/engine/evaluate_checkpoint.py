"""Evaluate a saved checkpoint on the validation split and write ``metrics.json``."""
from __future__ import annotations

import json
import os

from rdrop_paddle.config import Config
from rdrop_paddle.engine import builders
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.checkpoint import load_weights
from rdrop_paddle.engine.evaluate import evaluate


def evaluate_checkpoint(cfg: Config) -> dict:
    """Load ``Model.pretrained`` (default ``output_dir/best.pdparams``) and evaluate it."""
    dist.init(cfg.Global.device)
    path = cfg.Model.pretrained or os.path.join(cfg.Global.output_dir, "best.pdparams")
    model = builders.model_from_config(cfg)
    load_weights(model, path)
    _, val_set = builders.datasets(cfg)
    metrics = evaluate(model, builders.val_loader(cfg, val_set))
    metrics["checkpoint"] = path
    if dist.is_main():
        os.makedirs(cfg.Global.output_dir, exist_ok=True)
        out = os.path.join(cfg.Global.output_dir, "metrics.json")
        tmp = f"{out}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(metrics, fh, indent=2)
        os.replace(tmp, out)
        print(f"eval {cfg.Model.name} on {cfg.Data.name} ({metrics['count']} images) "
              f"from {path}")
        print(f"top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f}")
    return metrics
