"""Datasets by name (``Data.name``)."""
from __future__ import annotations

from paddle.io import Dataset

from rdrop_paddle.config import DataConfig
from rdrop_paddle.data.digits import ArrayDataset, load_digits_split
from rdrop_paddle.errors import UserInputError


def build_datasets(cfg: DataConfig, image_size: int) -> tuple[Dataset, Dataset]:
    """The (train, val) datasets of ``cfg.name`` at ``image_size``."""
    if cfg.name == "digits":
        if image_size != 8:
            raise UserInputError(f"Data.name digits has 8x8 images; Model.image_size is {image_size}")
        split = load_digits_split(cfg.val_fraction, cfg.split_seed)
        return ArrayDataset(*split["train"]), ArrayDataset(*split["val"])
    if cfg.name == "cifar100":
        from rdrop_paddle.data.cifar100 import build_cifar100

        return build_cifar100(cfg.root, image_size)
    raise UserInputError(f"unknown Data.name {cfg.name!r}")


__all__ = ["build_datasets", "ArrayDataset"]
