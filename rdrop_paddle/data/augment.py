"""Training augmentations besides the crop: flip, colour jitter, random erasing.

Each takes the sample's ``numpy.random.Generator`` (see :mod:`rdrop_paddle.data.sampler`),
so augmentation is the same on any number of workers and cards and replays on resume.
They follow torchvision's ``RandomHorizontalFlip`` / ``ColorJitter`` (PIL
``ImageEnhance``, the three adjustments in a random order) and timm's ``RandomErasing``
(one box, area 2 %..1/3, aspect 0.3..3.3, per-pixel normal values: ``mode='pixel'``).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageEnhance


def hflip(image: Image.Image, prob: float, rng: np.random.Generator) -> Image.Image:
    """Mirror left-right with probability ``prob``."""
    return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < prob else image


def color_jitter(image: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation factors uniform in ``[max(0, 1 - s), 1 + s]``,
    applied in a random order (saturation only on colour images)."""
    enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
    for i in rng.permutation(3):
        factor = rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength)
        if enhancers[i] is not ImageEnhance.Color or image.mode == "RGB":
            image = enhancers[i](image).enhance(factor)
    return image


def random_erasing(chw: np.ndarray, prob: float, rng: np.random.Generator, min_area: float = 0.02,
                   max_area: float = 1 / 3, min_aspect: float = 0.3) -> np.ndarray:
    """With probability ``prob``, one box of the normalised ``[C, H, W]`` array replaced by
    standard normal values (10 tries to fit a box, as timm)."""
    if rng.random() >= prob:
        return chw
    channels, height, width = chw.shape
    log_ratio = (math.log(min_aspect), math.log(1 / min_aspect))
    for _ in range(10):
        target = rng.uniform(min_area, max_area) * height * width
        aspect = math.exp(rng.uniform(*log_ratio))
        h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if w < width and h < height:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            chw = chw.copy()
            chw[:, top:top + h, left:left + w] = rng.standard_normal((channels, h, w), dtype=np.float32)
            return chw
    return chw
