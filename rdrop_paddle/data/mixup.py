"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) on a micro-batch, as timm's ``Mixup``
(``mode='batch'``): one ``lambda ~ Beta(alpha, alpha)`` per batch, each sample mixed with
the sample at the mirrored position (``x.flip(0)``), CutMix boxes of area ``1 - lambda``
centred uniformly and clipped, ``lambda`` corrected to the clipped box's area.

    x~ = lambda * x + (1 - lambda) * flip(x)        (Mixup)
    y~ = lambda * onehot(y) + (1 - lambda) * onehot(flip(y))

It runs where the batch is collated, once per micro-batch and before R-Drop duplicates the
input, so both passes see the same mixed images.  Its generator comes from the run seed and
the micro-batch's first stream position: the same on any card count and on resume.
Targets are ``[B, C]`` probabilities; label smoothing is applied by the loss
(``Loss.label_smoothing``), which gives timm's smoothed mixed targets exactly.
"""
from __future__ import annotations

import numpy as np

_MIX = 2  # random stream of the run seed (0: order, 1: per-sample augmentation)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), num_classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def cutmix_box(shape: tuple, lam: float, center: tuple[int, int]) -> tuple[tuple[int, int, int, int], float]:
    """``((y_lo, y_hi, x_lo, x_hi), corrected lambda)`` of a box of side ratio ``sqrt(1 - lam)``
    centred at ``center = (cy, cx)`` and clipped to the image (timm ``rand_bbox``)."""
    height, width = shape[-2:]
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = center
    y_lo, y_hi = int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + (cut_h + 1) // 2, 0, height))
    x_lo, x_hi = int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + (cut_w + 1) // 2, 0, width))
    return (y_lo, y_hi, x_lo, x_hi), 1.0 - (y_hi - y_lo) * (x_hi - x_lo) / float(height * width)


def mix(images: np.ndarray, labels: np.ndarray, num_classes: int, lam: float,
        box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mixed batch and its ``[B, C]`` targets for a given ``lam`` (and CutMix ``box``)."""
    flipped = images[::-1]
    if box is not None:
        y_lo, y_hi, x_lo, x_hi = box
        images = images.copy()
        images[:, :, y_lo:y_hi, x_lo:x_hi] = flipped[:, :, y_lo:y_hi, x_lo:x_hi]
    elif lam != 1.0:
        images = (images * np.float32(lam) + flipped * np.float32(1.0 - lam)).astype(np.float32)
    targets = one_hot(labels, num_classes)
    return images, (targets * np.float32(lam) + targets[::-1] * np.float32(1.0 - lam)).astype(np.float32)


class Mixup:
    """``Mixup(...)(images, labels, keys) -> (images, targets)``, a loader ``batch_op``.

    Args:
        num_classes: width of the targets.
        mixup, cutmix: Beta alphas (0 = that one off).
        prob: probability of mixing a batch; switch_prob: CutMix instead of Mixup when both are on.
    """

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0,
                 switch_prob: float = 0.5) -> None:
        self.num_classes, self.mixup, self.cutmix = num_classes, mixup, cutmix
        self.prob, self.switch_prob = prob, switch_prob

    def params(self, rng: np.random.Generator, shape: tuple) -> tuple[float, tuple | None]:
        """``(lam, CutMix box or None)`` of one batch, drawn in timm's order."""
        if not (self.mixup or self.cutmix) or rng.random() >= self.prob:
            return 1.0, None
        use_cutmix = self.cutmix > 0 and (self.mixup <= 0 or rng.random() < self.switch_prob)
        alpha = self.cutmix if use_cutmix else self.mixup
        lam = float(rng.beta(alpha, alpha))
        if not use_cutmix:
            return lam, None
        center = (int(rng.integers(0, shape[-2])), int(rng.integers(0, shape[-1])))
        return cutmix_box(shape, lam, center)[::-1]

    def __call__(self, images: np.ndarray, labels: np.ndarray, keys: list) -> tuple[np.ndarray, np.ndarray]:
        seed, _, position = keys[0][1]  # (index, (run seed, stream, position)) of the first sample
        lam, box = self.params(np.random.default_rng([seed, _MIX, position]), images.shape)
        return mix(images, labels, self.num_classes, lam, box)
