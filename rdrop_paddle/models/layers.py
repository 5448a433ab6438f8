"""The layers the models are built from: Paddle's, or on CPU the faster equivalents of
:mod:`rdrop_paddle.cpu` (same parameters, state dicts and results).

Chosen once, here, from ``RDROP_CPU_KERNELS`` (default on; ``0`` = Paddle's own layers),
the way timm picks its fused attention from ``TIMM_FUSED_ATTN``.
"""
import paddle.nn as nn

from rdrop_paddle.cpu.process import kernels_enabled

if kernels_enabled():
    from rdrop_paddle.cpu.dropout import Dropout
    from rdrop_paddle.cpu.kernels import LayerNorm, Linear
else:
    Dropout, LayerNorm, Linear = nn.Dropout, nn.LayerNorm, nn.Linear

__all__ = ["Dropout", "LayerNorm", "Linear"]
