"""Config -> objects: the model and the data loaders, shared by training and evaluation."""
from __future__ import annotations

import paddle
from paddle.io import DataLoader, DistributedBatchSampler

from rdrop_paddle.config import Config
from rdrop_paddle.data import build_datasets
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.evaluate import shard
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.models import VisionTransformer, build_model


def model_from_config(cfg: Config) -> VisionTransformer:
    m = cfg.Model
    return build_model(m.name, num_classes=m.num_classes, image_size=m.image_size,
                       dropout=m.dropout, attn_dropout=m.attn_dropout, drop_path=m.drop_path)


def micro_batch_size(cfg: Config) -> int:
    """Per-card batch of one forward: global ``Data.batch_size`` / (cards x accumulation)."""
    parts = dist.world_size() * cfg.Optimizer.accum_steps
    if cfg.Data.batch_size % parts:
        raise UserInputError(
            f"Data.batch_size {cfg.Data.batch_size} is not divisible by cards x "
            f"Optimizer.accum_steps = {dist.world_size()} x {cfg.Optimizer.accum_steps}")
    return cfg.Data.batch_size // parts


def train_loader(cfg: Config, dataset) -> tuple[DataLoader, DistributedBatchSampler]:
    """Shuffled, drop-last loader; each global batch is split across ranks by the sampler."""
    if len(dataset) < cfg.Data.batch_size:
        raise UserInputError(f"training set has {len(dataset)} samples, fewer than "
                             f"Data.batch_size {cfg.Data.batch_size}")
    sampler = DistributedBatchSampler(dataset, batch_size=micro_batch_size(cfg), shuffle=True,
                                      drop_last=True)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.Data.num_workers)
    return loader, sampler


def val_loader(cfg: Config, dataset) -> DataLoader:
    return DataLoader(shard(dataset), batch_size=cfg.Data.eval_batch_size, shuffle=False,
                      drop_last=False, num_workers=cfg.Data.num_workers)


def datasets(cfg: Config):
    return build_datasets(cfg.Data, cfg.Model.image_size)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)
