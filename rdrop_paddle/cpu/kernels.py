"""``Linear`` and ``LayerNorm`` for Paddle's CPU kernels, with a hand-written backward.

Paddle's CPU kernels reduce over leading axes and broadcast slowly (README, "Performance
on CPU", has the measurements): the bias gradient ``dy.sum(0)`` of a ViT MLP layer costs
many times the same sum written as a matrix-vector product, ``LayerNormGrad`` costs many
times its forward, and a bias added by broadcasting costs more than one added after
``expand``.  The layers here keep Paddle's forward kernels, add biases at full shape,
and write the backward with GEMMs and same-shape elementwise ops.  They are drop-in
subclasses of ``paddle.nn.Linear`` / ``paddle.nn.LayerNorm`` (same parameters, names and
state dicts); off CPU, in static graphs (``paddle.jit``), or without gradients for
LayerNorm, they are the parent layers.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer


def _needs_grad(*tensors: paddle.Tensor) -> list:
    """Which inputs want a gradient: a PyLayer must return None for the others."""
    return [not t.stop_gradient for t in tensors]


def _full(t: paddle.Tensor, shape) -> paddle.Tensor:
    """``t`` expanded to ``shape``: a same-shape op after it beats Paddle's CPU broadcast."""
    return t.expand(shape)


def _cpu_linear(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """``x W + b`` with the bias added in place at full shape (no autograd)."""
    y = paddle.matmul(x, weight)
    return y.add_(_full(bias, y.shape))


def _column_sums(t: paddle.Tensor) -> paddle.Tensor:
    """Sum of a 2-D tensor over its rows, as ``ones[1, M] @ t`` (a GEMV)."""
    return paddle.matmul(paddle.ones([1, t.shape[0]], t.dtype), t).reshape([t.shape[1]])


def _row_means(t: paddle.Tensor) -> paddle.Tensor:
    """Mean of a 2-D tensor over its columns, ``[M, 1]``, as ``t @ (ones[N, 1] / N)``."""
    return paddle.matmul(t, paddle.full([t.shape[1], 1], 1.0 / t.shape[1], t.dtype))


class _LinearFn(PyLayer):
    """``y = x W + b`` (W stored ``[in, out]``), backward as three 2-D GEMMs."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.needs = _needs_grad(x, weight, bias)
        return _cpu_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        g2 = grad.reshape([-1, grad.shape[-1]])
        dx = dw = db = None
        if ctx.needs[0]:
            dx = paddle.matmul(g2, weight, transpose_y=True).reshape(x.shape)
        if ctx.needs[1]:
            dw = paddle.matmul(x.reshape([-1, x.shape[-1]]), g2, transpose_x=True)
        if ctx.needs[2]:
            db = _column_sums(g2)
        return dx, dw, db


class _LayerNormFn(PyLayer):
    """Layer normalisation over the last axis (Ba et al., 2016, eq. 4).

    With x̂ = (x - μ) / σ, the backward (ĝ = γ ⊙ dy; a, b the row means of ĝ, ĝ ⊙ x̂) is
    dx = (ĝ - a - x̂ ⊙ b) / σ = dy ⊙ (σ⁻¹ γᵀ) - x̂ ⊙ (b / σ) 1ᵀ - (a / σ) 1ᵀ,
    dγ = Σ dy ⊙ x̂,  dβ = Σ dy.  μ, σ are recomputed from the saved input (cheaper here
    than saving them); the row means and column sums are GEMVs and every row or
    column broadcast is a rank-1 GEMM, so only five elementwise passes remain.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        ctx.save_for_backward(x, weight)
        ctx.epsilon, ctx.needs = epsilon, _needs_grad(x, weight, bias)
        return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        x2 = x.reshape([-1, x.shape[-1]])
        g2 = grad.reshape([-1, grad.shape[-1]])
        ones = paddle.ones([1, x2.shape[1]], x2.dtype)
        centred = paddle.addmm(x2, _row_means(x2), ones, beta=1.0, alpha=-1.0)
        rstd = paddle.rsqrt(_row_means(centred * centred) + ctx.epsilon)  # [M, 1]
        x_hat = centred * paddle.matmul(rstd, ones)
        g_x_hat = g2 * x_hat
        dx = dw = db = None
        if ctx.needs[0]:
            gamma, rstd_n = weight.reshape([-1, 1]), rstd / x2.shape[1]
            a = paddle.matmul(g2, gamma) * rstd_n
            b = paddle.matmul(g_x_hat, gamma) * rstd_n
            dx = g2 * paddle.matmul(rstd, gamma.reshape([1, -1])) - x_hat * paddle.matmul(b, ones)
            dx = paddle.addmm(dx, a, ones, beta=1.0, alpha=-1.0).reshape(x.shape)
        if ctx.needs[1]:
            dw = _column_sums(g_x_hat)
        if ctx.needs[2]:
            db = _column_sums(g2)
        return dx, dw, db


class Linear(nn.Linear):
    """``paddle.nn.Linear``; on CPU the bias is added at full shape and the backward is GEMMs."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.bias is None or not paddle.in_dynamic_mode() or not x.place.is_cpu_place():
            return nn.Linear.forward(self, x)  # explicit: Paddle 2.6's dy2static breaks super()
        if paddle.is_grad_enabled():
            return _LinearFn.apply(x, self.weight, self.bias)
        return _cpu_linear(x, self.weight, self.bias)


class LayerNorm(nn.LayerNorm):
    """``paddle.nn.LayerNorm`` (last axis, affine) with a GEMM-based backward on CPU."""

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if (len(self._normalized_shape) != 1 or self.weight is None or self.bias is None
                or not paddle.in_dynamic_mode() or not x.place.is_cpu_place()
                or not paddle.is_grad_enabled()):
            return nn.LayerNorm.forward(self, x)
        return _LayerNormFn.apply(x, self.weight, self.bias, self._epsilon)
