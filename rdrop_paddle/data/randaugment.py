"""RandAugment (Cubuk et al., 2020) with timm's policy strings, drawn from a NumPy generator.

``rand-m9-mstd0.5-inc1`` (timm ``rand_augment_transform``): ``n`` operations (default 2)
chosen uniformly with replacement, each applied with probability ``p`` (default 0.5) at a
magnitude drawn from ``Normal(m, mstd)`` clipped to ``[0, mmax]`` (``mstd`` ``inf``:
uniform in ``[0, m]``); ``inc1`` selects the operations whose strength increases with the
magnitude.  The level functions are timm's (rotate up to 30 degrees, shear 0.3, translate
45 % of the side, enhancement factors ``1 +- 0.9 m/10``, ...), with the fill colour the
normalisation mean (128 grey for mean 0.5) and the interpolation of ``Data.interpolation``.
Every draw comes from the generator passed in: the sample's own, so the same on every
card, worker count and resume.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from rdrop_paddle.errors import UserInputError

_MAX_LEVEL = 10.0


def _signed(rng: np.random.Generator, value: float) -> float:
    return -value if rng.random() < 0.5 else value


def _affine(image, matrix, fill, resample):
    return image.transform(image.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill)


def _solarize_add(image, add: int, threshold: int = 128):
    lut = [min(255, i + add) if i < threshold else i for i in range(256)]
    return image.point(lut * len(image.getbands()))


def _ops(increasing: bool) -> dict[str, Callable]:
    """``name -> op(image, level, rng, fill, resample)``, timm's ``_RAND_(INCREASING_)TRANSFORMS``."""
    def enhance(cls):
        if increasing:
            return lambda im, m, rng, fill, rs: cls(im).enhance(max(0.1, 1.0 + _signed(rng, m / _MAX_LEVEL * 0.9)))
        return lambda im, m, rng, fill, rs: cls(im).enhance(m / _MAX_LEVEL * 1.8 + 0.1)

    def posterize(im, m, rng, fill, rs):
        bits = 4 - int(m / _MAX_LEVEL * 4) if increasing else int(m / _MAX_LEVEL * 4)
        if bits >= 8:
            return im
        # 0 bits kept: black, as Pillow < 11 gave (newer Pillow refuses bits < 1; timm then fails)
        return ImageOps.posterize(im, bits) if bits >= 1 else im.point([0] * 256 * len(im.getbands()))

    def solarize(im, m, rng, fill, rs):
        level = int(m / _MAX_LEVEL * 256)
        return ImageOps.solarize(im, 256 - level if increasing else level)

    return {
        "AutoContrast": lambda im, m, rng, fill, rs: ImageOps.autocontrast(im),
        "Equalize": lambda im, m, rng, fill, rs: ImageOps.equalize(im),
        "Invert": lambda im, m, rng, fill, rs: ImageOps.invert(im),
        "Rotate": lambda im, m, rng, fill, rs: im.rotate(_signed(rng, m / _MAX_LEVEL * 30.0), resample=rs,
                                                         fillcolor=fill),
        "Posterize": posterize,
        "Solarize": solarize,
        "SolarizeAdd": lambda im, m, rng, fill, rs: _solarize_add(im, min(128, int(m / _MAX_LEVEL * 110))),
        "Color": enhance(ImageEnhance.Color),
        "Contrast": enhance(ImageEnhance.Contrast),
        "Brightness": enhance(ImageEnhance.Brightness),
        "Sharpness": enhance(ImageEnhance.Sharpness),
        "ShearX": lambda im, m, rng, fill, rs: _affine(im, (1, _signed(rng, m / _MAX_LEVEL * 0.3), 0, 0, 1, 0),
                                                       fill, rs),
        "ShearY": lambda im, m, rng, fill, rs: _affine(im, (1, 0, 0, _signed(rng, m / _MAX_LEVEL * 0.3), 1, 0),
                                                       fill, rs),
        "TranslateXRel": lambda im, m, rng, fill, rs: _affine(
            im, (1, 0, _signed(rng, m / _MAX_LEVEL * 0.45) * im.size[0], 0, 1, 0), fill, rs),
        "TranslateYRel": lambda im, m, rng, fill, rs: _affine(
            im, (1, 0, 0, 0, 1, _signed(rng, m / _MAX_LEVEL * 0.45) * im.size[1]), fill, rs),
    }


def parse_policy(text: str) -> dict:
    """``{'n', 'm', 'mstd', 'mmax', 'p', 'inc'}`` of a timm RandAugment string; anything else
    is a ``UserInputError`` naming the part."""
    parts = text.split("-")
    if parts[0] != "rand":
        raise UserInputError(f"Data.auto_augment {text!r}: only RandAugment strings ('rand-m9-mstd0.5-inc1') "
                             f"are supported")
    policy = {"n": 2, "m": 9.0, "mstd": 0.0, "mmax": _MAX_LEVEL, "p": 0.5, "inc": False}
    for part in parts[1:]:
        key = next((k for k in ("mstd", "mmax", "inc", "m", "n", "p") if part.startswith(k)), None)
        try:
            value = float(part[len(key):]) if key else None
        except ValueError:
            value = None
        if key is None or value is None or math.isnan(value) or (math.isinf(value) and key != "mstd"):
            raise UserInputError(f"Data.auto_augment {text!r}: cannot read {part!r} (known: m, n, mstd, mmax, "
                                 f"p, inc followed by a finite number; mstd may be inf)")
        policy[key] = bool(value) if key == "inc" else (int(value) if key == "n" else value)
    if not (0 <= policy["n"] <= 16 and 0.0 <= policy["p"] <= 1.0 and policy["mstd"] >= 0
            and 0 <= policy["m"] <= 100 and 0 < policy["mmax"] <= 100):
        raise UserInputError(f"Data.auto_augment {text!r}: n must be in [0, 16], p in [0, 1], mstd >= 0, "
                             f"m in [0, 100], mmax in (0, 100]")
    return policy


class RandAugment:
    """``RandAugment(policy)(image, rng)`` on a PIL image (L or RGB)."""

    def __init__(self, policy: str, fill: tuple[int, ...] = (128, 128, 128),
                 interpolation: int = Image.BILINEAR) -> None:
        self.policy = parse_policy(policy)
        self.ops = _ops(self.policy["inc"])
        self.names = list(self.ops)
        self.fill, self.resample = fill, interpolation

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        pol, fill = self.policy, self.fill if image.mode == "RGB" else self.fill[0]
        for i in rng.integers(len(self.names), size=pol["n"]):
            if pol["p"] < 1.0 and rng.random() > pol["p"]:
                continue
            m = pol["m"]
            if pol["mstd"] == float("inf"):
                m = rng.uniform(0, m)
            elif pol["mstd"] > 0:
                m = rng.normal(m, pol["mstd"])
            image = self.ops[self.names[i]](image, min(max(0.0, m), pol["mmax"]), rng, fill, self.resample)
        return image
