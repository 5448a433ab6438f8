"""The package Dropout: inverted dropout with exact expectation, seeded by paddle.seed."""
import numpy as np
import paddle
import pytest

from rdrop_paddle.cpu.dropout import Dropout


def test_statistics_and_scale():
    drop = Dropout(0.1)
    drop.train()
    x = paddle.ones([200, 1000])
    y = drop(x).numpy()
    kept = y != 0
    keep = 1 - round(0.1 * 65536) / 65536
    assert abs(kept.mean() - keep) < 4 * np.sqrt(keep * (1 - keep) / kept.size)  # 4 sigma
    np.testing.assert_allclose(np.unique(y[kept]), [1 / keep], rtol=1e-6)


def test_seeded_by_paddle_seed_and_different_each_call():
    drop = Dropout(0.3)
    drop.train()
    x = paddle.ones([64, 64])
    paddle.seed(5)
    a, b = drop(x).numpy(), drop(x).numpy()
    paddle.seed(5)
    c = drop(x).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_gradient_is_the_mask_and_eval_is_identity():
    drop = Dropout(0.5)
    drop.train()
    x = paddle.randn([32, 16])
    x.stop_gradient = False
    y = drop(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (y.numpy() != 0) * 2.0)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    assert Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)
