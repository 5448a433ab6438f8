"""Config -> objects: the model and the data loaders, shared by training and evaluation."""
from __future__ import annotations

import paddle
from paddle.io import DataLoader

from rdrop_paddle.config import Config
from rdrop_paddle.data import build_datasets
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.engine.evaluate import shard
from rdrop_paddle.engine.sampler import BatchStream, ResumableBatchSampler
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.models import VisionTransformer, build_model


def model_from_config(cfg: Config) -> VisionTransformer:
    m = cfg.Model
    return build_model(m.name, num_classes=m.num_classes, image_size=m.image_size,
                       dropout=m.dropout, attn_dropout=m.attn_dropout, drop_path=m.drop_path)


def batch_plan(cfg: Config, world: int | None = None) -> tuple[int, int]:
    """``(micro_batch, accum_steps)`` so that cards x accum x micro = global ``Data.batch_size``.

    ``Optimizer.accum_steps`` wins when set; otherwise the fewest accumulation steps whose
    micro-batch fits ``Data.max_per_card_batch`` (no cap: 1).
    """
    world = world or dist.world_size()
    batch, accum, cap = cfg.Data.batch_size, cfg.Optimizer.accum_steps, cfg.Data.max_per_card_batch
    if batch % world:
        raise UserInputError(f"Data.batch_size {batch} is not divisible by {world} cards")
    per_card = batch // world
    if not accum:
        fits = [a for a in range(1, per_card + 1) if per_card % a == 0 and (not cap or per_card // a <= cap)]
        accum = fits[0]
    if per_card % accum:
        raise UserInputError(f"Data.batch_size {batch} is not divisible by cards x "
                             f"Optimizer.accum_steps = {world} x {accum}")
    return per_card // accum, accum


def train_batches(cfg: Config, dataset, micro_batch: int) -> BatchStream:
    """Shuffled, drop-last batches; each global batch is split across ranks by the sampler."""
    if len(dataset) < cfg.Data.batch_size:
        raise UserInputError(f"training set has {len(dataset)} samples, fewer than "
                             f"Data.batch_size {cfg.Data.batch_size}")
    sampler = ResumableBatchSampler(dataset, micro_batch, cfg.Global.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.Data.num_workers)
    return BatchStream(loader, sampler)


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
