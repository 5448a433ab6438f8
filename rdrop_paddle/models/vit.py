"""Vision Transformer (Dosovitskiy et al., ICLR 2021) in Paddle.

The layout follows the ViT that R-Drop's CIFAR-100 result was trained with
(``dropreg/R-Drop`` ``vit_src/models/modeling.py``, from jeonsworld/ViT-pytorch): a Conv2D
patch embedding, a class token and learned position embeddings, pre-norm blocks
(LayerNorm eps 1e-6, GELU MLP), a final LayerNorm and a linear head on the class token.
Its dropout sites are part of the method, since R-Drop's two passes differ only through
dropout; by default they are the official ones:

- ``dropout`` after adding the position embeddings (``Embeddings.dropout``) and in the MLP,
  after the activation and after ``fc2`` (``Mlp.dropout``, applied twice);
- ``attn_dropout`` on the attention probabilities (``Attention.attn_dropout``);
- ``proj_dropout`` after the attention output projection.  The official code builds it
  with ``attention_dropout_rate`` (``Attention.proj_dropout``), so ``None`` (default) means
  ``attn_dropout``; timm and the JAX ViT use ``dropout`` there instead.

Parameter names follow timm (``patch_embed.proj``, ``blocks.{i}.attn.qkv``, ...), with one
fused qkv projection; Linear weights are stored ``[in, out]`` as Paddle does.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from rdrop_paddle.models.layers import Dropout, LayerNorm, Linear

_trunc_normal = nn.initializer.TruncatedNormal(std=0.02)
_zeros = nn.initializer.Constant(0.0)


class DropPath(nn.Layer):
    """Stochastic depth per sample (Huang et al., 2016); identity when ``p == 0`` or in eval."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1)
        mask = paddle.bernoulli(paddle.full(shape, keep, dtype=x.dtype))
        return x * mask / keep


class PatchEmbed(nn.Layer):
    """Non-overlapping patches to tokens: ``[B, C, H, W] -> [B, H*W/p^2, D]``."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2D(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.proj(x).flatten(2).transpose([0, 2, 1])


class Attention(nn.Layer):
    """Multi-head self-attention with one fused ``qkv`` projection."""

    def __init__(self, dim: int, num_heads: int, attn_dropout: float, proj_dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = Linear(dim, 3 * dim)
        self.attn_drop = Dropout(attn_dropout)
        self.proj = Linear(dim, dim)
        self.proj_drop = Dropout(proj_dropout)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape([b, n, 3, self.num_heads, d // self.num_heads])
        q, k, v = paddle.unbind(qkv.transpose([2, 0, 3, 1, 4]), axis=0)  # each [b, heads, n, d_head]
        attn = F.softmax(paddle.matmul(q * self.scale, k, transpose_y=True), axis=-1)
        attn = self.attn_drop(attn)
        out = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([b, n, d])
        return self.proj_drop(self.proj(out))


class Mlp(nn.Layer):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Layer):
    """Pre-norm transformer encoder block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float,
                 attn_dropout: float, proj_dropout: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, epsilon=1e-6)
        self.attn = Attention(dim, num_heads, attn_dropout, proj_dropout)
        self.norm2 = LayerNorm(dim, epsilon=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Layer):
    """ViT classifier over ``[B, in_chans, image_size, image_size]`` images.

    Args:
        image_size: input height and width (square).
        patch_size: side of a square patch; must divide ``image_size``.
        in_chans: input channels.
        num_classes: size of the head.
        embed_dim, depth, num_heads, mlp_ratio: transformer size.
        dropout: dropout after the embeddings and in the MLP (twice).
        attn_dropout: dropout on the attention probabilities.
        proj_dropout: dropout after the attention output projection; ``None`` = ``attn_dropout``
            (the official ``vit_src`` model), ``dropout`` gives the timm/JAX sites.
        drop_path: stochastic-depth rate, increasing linearly to this value over blocks.
        recompute: in training, keep only each block's input and recompute the block in the
            backward (``paddle.distributed.fleet.utils.recompute``), trading compute for
            activation memory.  Exact: the RNG state is restored for the replay, so dropout
            draws the same masks and gradients are identical.
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, dropout: float = 0.1,
                 attn_dropout: float = 0.0, proj_dropout: Optional[float] = None,
                 drop_path: float = 0.0, recompute: bool = False) -> None:
        super().__init__()
        if image_size <= 0 or image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a positive multiple of the patch size "
                             f"{patch_size}")
        proj_dropout = attn_dropout if proj_dropout is None else proj_dropout
        self.image_size, self.patch_size, self.in_chans = image_size, patch_size, in_chans
        self.num_classes, self.embed_dim, self.recompute = num_classes, embed_dim, recompute
        self.grid = image_size // patch_size
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=_zeros)
        self.pos_embed = self.create_parameter([1, self.grid ** 2 + 1, embed_dim],
                                               default_initializer=_trunc_normal)
        self.pos_drop = Dropout(dropout)
        rates = np.linspace(0.0, drop_path, depth).tolist()
        self.blocks = nn.LayerList([
            Block(embed_dim, num_heads, mlp_ratio, dropout, attn_dropout, proj_dropout, rates[i])
            for i in range(depth)])
        self.norm = LayerNorm(embed_dim, epsilon=1e-6)
        self.head = Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in self.sublayers():
            if isinstance(layer, nn.Linear):
                _trunc_normal(layer.weight)
                _zeros(layer.bias)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """Final-norm class-token features ``[B, embed_dim]``."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand([x.shape[0], -1, -1])
        x = self.pos_drop(paddle.concat([cls, x], axis=1) + self.pos_embed)
        for block in self.blocks:
            if self.recompute and self.training and not x.stop_gradient:
                from paddle.distributed.fleet.utils import recompute

                x = recompute(block, x, preserve_rng_state=True)
            else:
                x = block(x)
        return self.norm(x)[:, 0]

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.head(self.forward_features(x))


def interpolate_pos_embed(pos_embed: np.ndarray, new_grid: int, num_prefix: int = 1) -> np.ndarray:
    """Resize ``[1, prefix + g*g, D]`` position embeddings to a ``new_grid`` x ``new_grid`` grid.

    The class-token rows are kept; the grid rows are resampled with first-order
    (bilinear) spline zoom, as ``scipy.ndimage.zoom(order=1)`` in the official
    ``vit_src`` loader.  Returns a new array; the input is not modified.
    """
    pos_embed = np.asarray(pos_embed)
    prefix, grid_rows = pos_embed[:, :num_prefix], pos_embed[0, num_prefix:]
    old = math.isqrt(grid_rows.shape[0])
    if old * old != grid_rows.shape[0]:
        raise ValueError(f"position embedding with {grid_rows.shape[0]} grid rows is not square")
    if old == new_grid:
        return pos_embed.copy()
    from scipy import ndimage

    grid = grid_rows.reshape(old, old, -1)
    zoomed = ndimage.zoom(grid, (new_grid / old, new_grid / old, 1), order=1)
    return np.concatenate([prefix, zoomed.reshape(1, new_grid * new_grid, -1)], axis=1)
