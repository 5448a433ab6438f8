"""The CPU Linear and LayerNorm: outputs and all gradients match PyTorch's kernels."""
import numpy as np
import paddle
import pytest
import torch

from rdrop_paddle.cpu.kernels import LayerNorm, Linear


def _paddle_grads(layer, x_np, g_np, x_needs_grad=True):
    x = paddle.to_tensor(x_np, stop_gradient=not x_needs_grad)
    y = layer(x)
    y.backward(paddle.to_tensor(g_np))
    grads = [p.grad.numpy() for p in (layer.weight, layer.bias)]
    return y.numpy(), (x.grad.numpy() if x_needs_grad else None), grads


def _torch_grads(fn, x_np, g_np, params):
    x = torch.tensor(x_np, requires_grad=True)
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    y = fn(x, *ps)
    y.backward(torch.tensor(g_np))
    return y.detach().numpy(), x.grad.numpy(), [p.grad.numpy() for p in ps]


def _close(a, b, rtol):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


@pytest.mark.parametrize("shape", [[4, 7, 24], [5, 24]])
def test_linear_matches_torch(shape):
    rs = np.random.RandomState(0)
    layer = Linear(24, 40)
    layer.bias.set_value(rs.randn(40).astype("float32"))
    x = rs.randn(*shape).astype("float32")
    g = rs.randn(*shape[:-1], 40).astype("float32")
    w, b = layer.weight.numpy(), layer.bias.numpy()
    y, dx, (dw, db) = _paddle_grads(layer, x, g)
    # torch stores Linear weights [out, in]; the gradient is compared in Paddle's [in, out].
    ty, tdx, (tdw, tdb) = _torch_grads(torch.nn.functional.linear, x, g, [w.T.copy(), b])
    for got, want in [(y, ty), (dx, tdx), (dw, tdw.T), (db, tdb)]:
        _close(got, want, 1e-5)


def test_linear_input_without_gradient_and_no_grad_mode():
    rs = np.random.RandomState(1)
    layer = Linear(8, 3)
    x = rs.randn(6, 8).astype("float32")
    g = rs.randn(6, 3).astype("float32")
    _, dx, (dw, db) = _paddle_grads(layer, x, g, x_needs_grad=False)
    assert dx is None
    _close(dw, x.T @ g, 1e-5)
    _close(db, g.sum(0), 1e-5)
    with paddle.no_grad():  # plain paddle.nn.Linear path
        np.testing.assert_allclose(layer(paddle.to_tensor(x)).numpy(),
                                   x @ layer.weight.numpy() + layer.bias.numpy(), rtol=1e-5)


@pytest.mark.parametrize("offset", [0.0, 300.0])
def test_layer_norm_matches_torch(offset):
    """Also with a large common offset, where a one-pass variance would cancel badly."""
    rs = np.random.RandomState(2)
    layer = LayerNorm(32, epsilon=1e-6)
    layer.weight.set_value(rs.randn(32).astype("float32"))
    layer.bias.set_value(rs.randn(32).astype("float32"))
    x = (rs.randn(3, 9, 32) * 0.5 + offset).astype("float32")
    g = rs.randn(3, 9, 32).astype("float32")
    w, b = layer.weight.numpy(), layer.bias.numpy()
    y, dx, (dw, db) = _paddle_grads(layer, x, g)

    def ln(t, tw, tb):
        return torch.nn.functional.layer_norm(t, (32,), tw, tb, 1e-6)
    ty, tdx, (tdw, tdb) = _torch_grads(ln, x, g, [w, b])
    for got, want in [(y, ty), (dx, tdx), (dw, tdw), (db, tdb)]:
        _close(got, want, 2e-4 if offset else 1e-5)
