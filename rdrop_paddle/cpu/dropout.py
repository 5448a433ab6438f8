"""Dropout whose CPU masks come from NumPy instead of Paddle's CPU generator.

Paddle's CPU dropout kernel draws one random number per element slowly, and R-Drop runs
every dropout site twice per step (README, "Performance on CPU", has the numbers).  On
CPU this layer draws 16 random bits per element with NumPy's SFC64 generator (four per
64-bit word), builds the scaled mask in NumPy and hands it to Paddle without a copy
(DLPack); the backward keeps only the one-byte NumPy mask.  Masks stay deterministic:
each call takes its NumPy seed from Paddle's generator, so ``paddle.seed`` fixes them.

The drop probability is quantised to k/65536 (0.1 -> 0.1000061); kept values are scaled
by 65536/(65536-k), so the expectation is exactly preserved.  On GPU, for dtypes NumPy
lacks, in static graphs, or when nothing is dropped, it is ``paddle.nn.functional.dropout``.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer
from paddle.utils.dlpack import from_dlpack

_NUMPY_DTYPES = {paddle.float32: np.float32, paddle.float64: np.float64}


def _scaled_mask(keep: np.ndarray, scale: float, dtype) -> paddle.Tensor:
    """``keep * scale`` as a Paddle tensor sharing NumPy's memory."""
    return from_dlpack(np.multiply(keep, dtype(scale), dtype=dtype).__dlpack__())


class _MaskedScale(PyLayer):
    """``x * keep * scale`` whose backward keeps only the boolean NumPy mask."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.keep, ctx.scale = keep, scale
        return x * _scaled_mask(keep, scale, _NUMPY_DTYPES[x.dtype])

    @staticmethod
    def backward(ctx, grad):
        return grad * _scaled_mask(ctx.keep, ctx.scale, _NUMPY_DTYPES[grad.dtype])


def _keep_mask(shape: list, threshold: int, seed: int) -> np.ndarray:
    """Boolean mask, True with probability 1 - threshold/65536, from 16-bit draws."""
    size = int(np.prod(shape))
    words = np.random.Generator(np.random.SFC64(seed)).integers(
        0, 2 ** 64 - 1, -(-size // 4), dtype=np.uint64, endpoint=True)
    return words.view(np.uint16)[:size].reshape(shape) >= threshold


class Dropout(nn.Layer):
    """Inverted dropout (``upscale_in_train``), identical in use to ``paddle.nn.Dropout``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self._threshold = int(round(p * 65536))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if (not paddle.in_dynamic_mode() or not x.place.is_cpu_place() or self._threshold == 0
                or x.dtype not in _NUMPY_DTYPES):
            return F.dropout(x, self.p, training=True)
        seed = int(paddle.randint(0, 2 ** 31 - 1, [1]).item())
        keep = _keep_mask(list(x.shape), self._threshold, seed)
        return _MaskedScale.apply(x, keep, 65536.0 / (65536 - self._threshold))

    def extra_repr(self) -> str:
        return f"p={self.p}"
