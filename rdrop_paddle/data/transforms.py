"""Image transforms of the official ``vit_src`` pipeline, in NumPy and PIL.

``dropreg/R-Drop`` ``vit_src/utils/data_utils.py`` trains with torchvision's
``RandomResizedCrop((size, size), scale=(0.05, 1.0))``, ``ToTensor()``,
``Normalize(mean=0.5, std=0.5)`` and tests with ``Resize((size, size))`` and the same two.
These are those operations on PIL images (bilinear resampling, as torchvision's default),
returning float32 CHW NumPy arrays.  Not Paddle tensors: Paddle's DataLoader workers
pass tensors created in a worker through shared memory without keeping them alive, and
a batch of them can be freed before it is sent (a ``Tensor's dimension is out of bound``
error, or a worker segfault); NumPy batches are copied safely.

The random crop takes a ``numpy.random.Generator``: the training sampler hands each
sample its own seed, so augmentation does not depend on the number of workers and is
replayed exactly on resume.  The fine-tuning options (``Data.hflip``, ``color_jitter``,
``auto_augment``, ``random_erasing``, ``interpolation``, ``crop_pct``) follow timm's
``create_transform`` order: crop, flip, RandAugment or colour jitter, normalise, erasing.
At their defaults the pipeline, and every random draw, is the official one.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from rdrop_paddle.data import augment

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def crop_box(rng: np.random.Generator, width: int, height: int, scale=(0.05, 1.0),
             ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop: the procedure of torchvision's
    ``RandomResizedCrop.get_params`` (10 tries of a random area fraction in ``scale`` and a
    log-uniform aspect ratio in ``ratio``, then a central crop of the clamped ratio)."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


INTERPOLATION = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def resized_crop(image: Image.Image, box: tuple[int, int, int, int], size: int,
                 resample: int = Image.BILINEAR) -> Image.Image:
    """Crop ``(top, left, h, w)`` and resize to ``size`` x ``size`` (bilinear by default)."""
    top, left, h, w = box
    return image.crop((left, top, left + w, top + h)).resize((size, size), resample)


def to_normalized_chw(image: Image.Image, mean=MEAN, std=STD) -> np.ndarray:
    """``ToTensor`` (HWC uint8 -> CHW float in [0, 1]) then ``Normalize(mean, std)``
    (a grey-scale image has one channel and uses the first mean and std)."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    chw = array.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    channels = chw.shape[0]
    m = np.asarray(mean[:channels], np.float32).reshape(-1, 1, 1)
    s = np.asarray(std[:channels], np.float32).reshape(-1, 1, 1)
    return (chw - m) / s


class TrainTransform:
    """RandomResizedCrop(size, scale) [+ flip, RandAugment or jitter] + ToTensor + Normalize
    [+ erasing], from a per-sample generator.  Options left at 0 / "" draw nothing."""

    def __init__(self, size: int, scale=(0.05, 1.0), interpolation: str = "bilinear", hflip: float = 0.0,
                 color_jitter: float = 0.0, auto_augment: str = "", random_erasing: float = 0.0,
                 mean=MEAN, std=STD) -> None:
        self.size, self.scale, self.resample = size, tuple(scale), INTERPOLATION[interpolation]
        self.hflip, self.color_jitter, self.random_erasing = hflip, color_jitter, random_erasing
        self.mean, self.std = tuple(mean), tuple(std)
        self.rand_augment = None
        if auto_augment:
            from rdrop_paddle.data.randaugment import RandAugment

            fill = tuple(min(255, round(255 * m)) for m in (self.mean * 3)[:3])
            self.rand_augment = RandAugment(auto_augment, fill, self.resample)

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> np.ndarray:
        box = crop_box(rng, image.width, image.height, self.scale)
        image = resized_crop(image, box, self.size, self.resample)
        if self.hflip:
            image = augment.hflip(image, self.hflip, rng)
        if self.rand_augment is not None:  # timm: colour jitter only without auto-augment
            image = self.rand_augment(image, rng)
        elif self.color_jitter:
            image = augment.color_jitter(image, self.color_jitter, rng)
        chw = to_normalized_chw(image, self.mean, self.std)
        return augment.random_erasing(chw, self.random_erasing, rng) if self.random_erasing else chw


class EvalTransform:
    """Resize((size, size)) + ToTensor + Normalize; with ``crop_pct < 1`` timm's evaluation
    crop instead: the shorter side resized to ``floor(size / crop_pct)``, then the centre
    ``size`` x ``size``."""

    def __init__(self, size: int, mean=MEAN, std=STD, crop_pct: float = 1.0,
                 interpolation: str = "bilinear") -> None:
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)
        self.crop_pct, self.resample = crop_pct, INTERPOLATION[interpolation]

    def __call__(self, image: Image.Image, rng=None) -> np.ndarray:
        if self.crop_pct >= 1.0:
            return to_normalized_chw(image.resize((self.size, self.size), self.resample), self.mean, self.std)
        short = math.floor(self.size / self.crop_pct)
        w, h = image.size
        w, h = (short, max(1, int(short * h / w))) if w <= h else (max(1, int(short * w / h)), short)
        image = image.resize((w, h), self.resample)
        left, top = int(round((w - self.size) / 2.0)), int(round((h - self.size) / 2.0))
        return to_normalized_chw(image.crop((left, top, left + self.size, top + self.size)), self.mean, self.std)
