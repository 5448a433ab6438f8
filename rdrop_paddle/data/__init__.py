"""Data sets by name (``Data.name``), the sample stream and the loaders."""
from __future__ import annotations

from rdrop_paddle.config import DataConfig
from rdrop_paddle.data.dataset import ImageDataset, check_labels
from rdrop_paddle.errors import UserInputError


def build_datasets(cfg: DataConfig, image_size: int, num_classes: int) -> tuple[ImageDataset, ImageDataset]:
    """The (train, val) data sets of ``cfg.name`` at ``image_size``; every label must be a
    class of a ``num_classes`` model."""
    if cfg.name == "digits":
        from rdrop_paddle.data.digits import build_digits

        if image_size != 8:
            raise UserInputError(f"Data.name digits has 8x8 images; Model.image_size is {image_size}")
        train, val = build_digits(cfg.val_fraction, cfg.split_seed)
    elif cfg.name == "cifar100":
        from rdrop_paddle.data.cifar100 import build_cifar100

        train, val = build_cifar100(cfg.root, image_size)
    else:
        raise UserInputError(f"unknown Data.name {cfg.name!r}")
    for split, ds in (("training", train), ("validation", val)):
        if len(ds) == 0:
            raise UserInputError(f"the {cfg.name} {split} split is empty (Data.val_fraction "
                                 f"{cfg.val_fraction})")
        check_labels(ds.labels, num_classes, f"{cfg.name} {split} set")
    return train, val


def check_input_shape(dataset: ImageDataset, in_chans: int, image_size: int, what: str) -> None:
    """The first sample of ``dataset`` (an evaluation-transformed one) must be the
    ``[in_chans, image_size, image_size]`` input of model ``what``."""
    shape = tuple(dataset[0][0].shape)
    if shape != (in_chans, image_size, image_size):
        raise UserInputError(f"the data's samples are {list(shape)} (channels, height, width) but {what} "
                             f"takes [{in_chans}, {image_size}, {image_size}]")


def class_names(cfg: DataConfig) -> list[str]:
    """Class names of ``cfg.name`` (CIFAR-100's ``fine_label_names`` read from its archive)."""
    if cfg.name == "digits":
        from rdrop_paddle.data.digits import CLASS_NAMES

        return list(CLASS_NAMES)
    from rdrop_paddle.data.cifar100 import class_names as cifar_names, locate

    return cifar_names(locate(cfg.root))


__all__ = ["build_datasets", "check_input_shape", "class_names", "ImageDataset"]
