"""Data sets by name (``Data.name``), their transforms, the sample stream and the loaders."""
from __future__ import annotations

from rdrop_paddle.config.schema import DataConfig
from rdrop_paddle.data.dataset import ImageDataset, check_labels
from rdrop_paddle.data.decode import check_headers
from rdrop_paddle.data.transforms import EvalTransform, TrainTransform
from rdrop_paddle.errors import UserInputError

FILE_SOURCES = ("folder", "filelist")  # images read lazily from files
TEXT_SOURCES = ("text_folder", "glue", "clue")  # labelled text (rdrop_paddle.data.text)


def build_transforms(cfg: DataConfig, image_size: int) -> tuple[TrainTransform, EvalTransform]:
    """The training and evaluation transforms ``cfg`` describes."""
    return (TrainTransform(image_size, cfg.scale, cfg.interpolation, cfg.hflip, cfg.color_jitter,
                           cfg.auto_augment, cfg.random_erasing),
            EvalTransform(image_size, crop_pct=cfg.crop_pct, interpolation=cfg.interpolation))


def build_batch_op(cfg: DataConfig, num_classes: int):
    """The loader's per-micro-batch op: Mixup/CutMix when either alpha is set, else None."""
    if not (cfg.mixup or cfg.cutmix):
        return None
    from rdrop_paddle.data.mixup import Mixup

    return Mixup(num_classes, cfg.mixup, cfg.cutmix, cfg.mix_prob, cfg.mix_switch_prob)


def file_splits(cfg: DataConfig) -> dict:
    """Paths, labels and class names of a file source (nothing decoded)."""
    if cfg.name == "folder":
        from rdrop_paddle.data.folder import folder_splits

        return folder_splits(cfg.root, cfg.val_fraction, cfg.split_seed, cfg.allow_outside_root)
    from rdrop_paddle.data.filelist import filelist_splits

    return filelist_splits(cfg.root, cfg.train_list, cfg.val_list, cfg.label_list, cfg.allow_outside_root)


def build_datasets(cfg: DataConfig, image_size: int, num_classes: int, in_chans: int = 3,
                   text_dir: str = "") -> tuple:
    """The (train, val) data sets of ``cfg.name`` at ``image_size`` (text: tokenised with the
    ``vocab.txt`` of ``text_dir``); every label must be a class of a ``num_classes`` model
    (0: any number, the data set's own)."""
    train_tf, eval_tf = build_transforms(cfg, image_size)
    skipped = []
    if cfg.name == "digits":
        from rdrop_paddle.data.digits import build_digits

        if image_size != 8:
            raise UserInputError(f"Data.name digits has 8x8 images; Model.image_size is {image_size}")
        train, val = build_digits(cfg.val_fraction, cfg.split_seed)
    elif cfg.name == "cifar100":
        from rdrop_paddle.data.cifar100 import build_cifar100

        train, val = build_cifar100(cfg.root, image_size, train_tf, eval_tf)
    elif cfg.name in FILE_SOURCES:
        from rdrop_paddle.data.files import FileDataset

        found = file_splits(cfg)
        skipped = found["skipped"]
        check_class_count(len(found["classes"]), num_classes, cfg.name)
        train = FileDataset(*found["train"], train_tf, found["classes"], in_chans, cfg.skip_bad_images)
        val = FileDataset(*found["val"], eval_tf, found["classes"], in_chans, cfg.skip_bad_images)
        if not cfg.skip_bad_images:  # before anything is written, as every other check
            check_headers(found["train"][0] + found["val"][0])
    elif cfg.name in TEXT_SOURCES:
        from rdrop_paddle.data.text import Tokenizer, build_text_datasets

        train, val = build_text_datasets(cfg.name, cfg.root, cfg.task, Tokenizer.from_pretrained(text_dir),
                                         cfg.max_seq_len, cfg.skip_bad_lines, cfg.allow_outside_root)
        check_class_count(len(train.class_names), num_classes, cfg.name)
    else:
        raise UserInputError(f"unknown Data.name {cfg.name!r}")
    train.skipped_files = val.skipped_files = skipped
    for split, ds in (("training", train), ("validation", val)):
        if len(ds) == 0:
            raise UserInputError(f"the {cfg.name} {split} split is empty (Data.val_fraction "
                                 f"{cfg.val_fraction})")
        check_labels(ds.labels, num_classes or len(ds.class_names), f"{cfg.name} {split} set")
    return train, val


def check_class_count(found: int, num_classes: int, source: str) -> None:
    """An explicit ``Model.num_classes`` must be the data set's class count."""
    if num_classes and num_classes != found:
        raise UserInputError(f"Model.num_classes is {num_classes} but the {source} data set has {found} "
                             f"classes; set Model.num_classes: {found} (or 0 to take it from the data)")


def num_classes_of(cfg: DataConfig) -> int:
    """The class count of the data ``cfg`` names (for ``Model.num_classes: 0``)."""
    return len(class_names(cfg))


def check_input_shape(dataset, in_chans: int, image_size: int, what: str) -> None:
    """The first sample of ``dataset`` (an evaluation-transformed one) must be the
    ``[in_chans, image_size, image_size]`` input of model ``what``."""
    shape = tuple(dataset[0][0].shape)
    if shape != (in_chans, image_size, image_size):
        raise UserInputError(f"the data's samples are {list(shape)} (channels, height, width) but {what} "
                             f"takes [{in_chans}, {image_size}, {image_size}]")


def class_names(cfg: DataConfig) -> list[str]:
    """Class names of ``cfg.name`` (CIFAR-100's ``fine_label_names`` read from its archive;
    a folder's class folders; a file list's label list, or its ids)."""
    if cfg.name == "digits":
        from rdrop_paddle.data.digits import CLASS_NAMES

        return list(CLASS_NAMES)
    if cfg.name in FILE_SOURCES:
        return list(file_splits(cfg)["classes"])
    if cfg.name in TEXT_SOURCES:
        from rdrop_paddle.data.text.sources import text_class_names

        return text_class_names(cfg.name, cfg.root, cfg.task, cfg.allow_outside_root)
    from rdrop_paddle.data.cifar100 import class_names as cifar_names, locate

    return cifar_names(locate(cfg.root))


__all__ = ["build_batch_op", "build_datasets", "build_transforms", "check_input_shape", "class_names", "num_classes_of",
           "ImageDataset"]
