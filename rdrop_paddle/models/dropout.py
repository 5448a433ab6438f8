"""Dropout whose CPU masks come from NumPy's PCG64 instead of Paddle's CPU generator.

Paddle 3.3's CPU dropout kernel draws one random number per element slowly
(70 ms for 4.8M floats on the 2-core AMD machine of the benchmark; PyTorch: 43 ms),
and dropout is applied to every block's MLP and attention output twice per R-Drop
step.  On CPU this layer draws 16 random bits per element with NumPy (9 ms), keeps a
one-byte mask for the backward as Paddle does, and multiplies.  Masks stay deterministic: each call takes
its NumPy seed from Paddle's generator, so ``paddle.seed`` fixes them as before.

The drop probability is quantised to k/65536 (0.1 -> 0.1000061); the kept values
are scaled by 65536/(65536-k), so the expectation is exactly preserved.  On GPU, or
when the input needs no mask, it is ``paddle.nn.functional.dropout``.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer


class _MaskedScale(PyLayer):
    """``x * keep * scale`` that saves only the boolean mask for its backward."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * (keep.astype(x.dtype) * scale)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensor()
        return grad * (keep.astype(grad.dtype) * ctx.scale)


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
        if not x.place.is_cpu_place() or self._threshold == 0:
            return F.dropout(x, self.p, training=True)
        seed = int(paddle.randint(0, 2 ** 31 - 1, [1]).item())
        bits = np.frombuffer(np.random.Generator(np.random.PCG64(seed)).bytes(2 * x.size),
                             dtype=np.uint16).reshape(x.shape)
        keep = paddle.to_tensor(bits >= self._threshold)  # 1 byte per element, as Paddle's own
        return _MaskedScale.apply(x, keep, 65536.0 / (65536 - self._threshold))

    def extra_repr(self) -> str:
        return f"p={self.p}"
