"""R-Drop losses against the official PyTorch snippet, the official vit_src loss and NumPy."""
import numpy as np
import paddle
import pytest

from rdrop_paddle.losses import RDropCrossEntropy, RDropLoss

torch = pytest.importorskip("torch")
TF = torch.nn.functional
from rdrop_paddle.alignment.reference import (  # noqa: E402
    official_compute_kl_loss, official_readme_loss, official_vit_src_loss)


def numpy_paddlenlp(p, q, reduction, keep=None):
    """paddlenlp.losses.RDropLoss by hand: kl_div per element, reduce, masked_select, sum."""
    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    lp, lq = log_softmax(p.astype(np.float64)), log_softmax(q.astype(np.float64))
    terms = [np.exp(lq) * (lq - lp), np.exp(lp) * (lp - lq)]  # kl_div(lp, q), kl_div(lq, p)
    reduce = {"none": lambda a: a, "sum": np.sum, "mean": np.mean,
              "batchmean": lambda a: a.sum() / a.shape[0]}[reduction]
    out = []
    for t in terms:
        t = reduce(t)
        if keep is not None:
            t = t[np.broadcast_to(keep, t.shape)]
        out.append(np.sum(t))
    return (out[0] + out[1]) / 2


@pytest.fixture
def logits():
    rng = np.random.RandomState(0)
    return (rng.randn(6, 5, 11).astype(np.float32) * 3, rng.randn(6, 5, 11).astype(np.float32) * 3)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_every_reduction_matches_paddlenlp_by_hand(logits, reduction):
    p, q = logits
    got = RDropLoss(reduction)(paddle.to_tensor(p), paddle.to_tensor(q)).item()
    np.testing.assert_allclose(got, numpy_paddlenlp(p, q, reduction), rtol=1e-5)


def test_none_reduction_matches_official_snippet_value_and_gradients(logits):
    p_np, q_np = logits
    p, q = paddle.to_tensor(p_np, stop_gradient=False), paddle.to_tensor(q_np, stop_gradient=False)
    loss = RDropLoss("none")(p, q)
    loss.backward()
    tp, tq = torch.tensor(p_np, requires_grad=True), torch.tensor(q_np, requires_grad=True)
    ref = official_compute_kl_loss(tp, tq)
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.grad.numpy(), tq.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mask_shape", ["BT", "BT1"])
def test_pad_mask_keep_meaning_vs_both_references(logits, mask_shape):
    p, q = logits
    keep = np.random.RandomState(1).rand(6, 5) > 0.4
    mask = keep if mask_shape == "BT" else keep[..., None]
    got = RDropLoss("none")(paddle.to_tensor(p), paddle.to_tensor(q), paddle.to_tensor(mask)).item()
    np.testing.assert_allclose(got, numpy_paddlenlp(p, q, "none", keep[..., None]), rtol=1e-5)
    # The official snippet's mask means the opposite: True = padding.
    official = official_compute_kl_loss(torch.tensor(p), torch.tensor(q),
                                        torch.tensor(~keep[..., None])).item()
    np.testing.assert_allclose(got, official, rtol=1e-5)
    unmasked = RDropLoss("none")(paddle.to_tensor(p), paddle.to_tensor(q)).item()
    assert got < unmasked


def test_pad_mask_with_mean_averages_over_kept_elements(logits):
    p, q = logits
    keep = np.random.RandomState(2).rand(6, 5) > 0.5
    got = RDropLoss("mean")(paddle.to_tensor(p), paddle.to_tensor(q), paddle.to_tensor(keep)).item()
    summed = numpy_paddlenlp(p, q, "none", keep[..., None])
    np.testing.assert_allclose(got, summed / (keep.sum() * p.shape[-1]), rtol=1e-5)


def test_bad_reduction_and_mask_shape_are_named():
    with pytest.raises(ValueError, match="none, sum, mean, batchmean"):
        RDropLoss("avg")
    x = paddle.zeros([2, 3, 4])
    with pytest.raises(ValueError, match=r"pad_mask of shape \[3, 2\] does not broadcast to logits of "
                                         r"shape \[2, 3, 4\]"):
        RDropLoss()(x, x, paddle.ones([3, 2], dtype="bool"))
    with pytest.raises(ValueError, match=r"\[2, 3, 3\]"):
        RDropLoss()(x, x, paddle.ones([2, 3, 3], dtype="bool"))


@pytest.mark.parametrize("shape", ["BTC", "BT", "BT1"])
def test_every_mask_shape_of_a_sequence(logits, shape):
    p, q = logits
    keep = np.random.RandomState(8).rand(6, 5) > 0.4
    mask = {"BTC": np.repeat(keep[..., None], 11, -1), "BT": keep, "BT1": keep[..., None]}[shape]
    got = RDropLoss("none")(paddle.to_tensor(p), paddle.to_tensor(q), paddle.to_tensor(mask)).item()
    np.testing.assert_allclose(got, numpy_paddlenlp(p, q, "none", keep[..., None]), rtol=1e-5)


@pytest.mark.parametrize("shape", ["B", "B1", "BC"])
def test_per_sample_masks_for_classification(shape):
    rng = np.random.RandomState(9)
    p, q = rng.randn(7, 5).astype(np.float32), rng.randn(7, 5).astype(np.float32)
    keep = np.array([1, 0, 1, 1, 0, 1, 1], bool)
    mask = {"B": keep, "B1": keep[:, None], "BC": np.repeat(keep[:, None], 5, 1)}[shape]
    got = RDropLoss("none")(paddle.to_tensor(p), paddle.to_tensor(q), paddle.to_tensor(mask)).item()
    np.testing.assert_allclose(got, numpy_paddlenlp(p[keep], q[keep], "none"), rtol=1e-5)


@pytest.mark.parametrize("convention", ["readme", "vit_src"])
def test_full_objective_against_official_formulas_with_gradients(convention):
    rng = np.random.RandomState(3)
    p_np, q_np = rng.randn(8, 10).astype(np.float32) * 2, rng.randn(8, 10).astype(np.float32) * 2
    y_np = rng.randint(0, 10, 8)
    alpha = 0.3
    p, q = paddle.to_tensor(p_np, stop_gradient=False), paddle.to_tensor(q_np, stop_gradient=False)
    out = RDropCrossEntropy(alpha, convention)(p, q, paddle.to_tensor(y_np))
    out["loss"].backward()
    tp, tq, ty = (torch.tensor(p_np, requires_grad=True), torch.tensor(q_np, requires_grad=True),
                  torch.tensor(y_np))
    official = official_readme_loss if convention == "readme" else official_vit_src_loss
    ref = official(tp, tq, ty, alpha)
    ref.backward()
    np.testing.assert_allclose(out["loss"].item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(out["ce"].item() + alpha * out["kl"].item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.grad.numpy(), tq.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_vit_src_is_twice_readme_at_same_alpha():
    rng = np.random.RandomState(4)
    p, q = paddle.to_tensor(rng.randn(4, 7).astype(np.float32)), paddle.to_tensor(rng.randn(4, 7).astype(np.float32))
    y = paddle.to_tensor(rng.randint(0, 7, 4))
    readme = RDropCrossEntropy(0.5, "readme")(p, q, y)["loss"].item()
    vit_src = RDropCrossEntropy(0.5, "vit_src")(p, q, y)["loss"].item()
    np.testing.assert_allclose(vit_src, 2 * readme, rtol=1e-6)


def test_alpha_zero_is_plain_cross_entropy_without_second_pass():
    rng = np.random.RandomState(5)
    p_np, y_np = rng.randn(5, 4).astype(np.float32), rng.randint(0, 4, 5)
    out = RDropCrossEntropy(0.0)(paddle.to_tensor(p_np), None, paddle.to_tensor(y_np))
    ref = TF.cross_entropy(torch.tensor(p_np), torch.tensor(y_np)).item()
    np.testing.assert_allclose(out["loss"].item(), ref, rtol=1e-6)
    assert out["kl"].item() == 0.0
    with pytest.raises(ValueError, match="second pass"):
        RDropCrossEntropy(0.3)(paddle.to_tensor(p_np), None, paddle.to_tensor(y_np))


def test_official_fp32_gradient_is_nan_past_underflow_this_one_is_not():
    """A logit gap above ~104 underflows a float32 probability to 0: the official snippet's
    kl_div gradient is then NaN (0 * log 0), this package's stays finite."""
    p_np = np.array([[120.0, 0.0, 1.0]], np.float32)
    q_np = np.array([[0.0, 120.0, 2.0]], np.float32)
    tp, tq = torch.tensor(p_np, requires_grad=True), torch.tensor(q_np, requires_grad=True)
    official_compute_kl_loss(tp, tq).backward()
    assert torch.isnan(tp.grad).any()
    p = paddle.to_tensor(p_np, stop_gradient=False)
    q = paddle.to_tensor(q_np, stop_gradient=False)
    RDropLoss()(p, q).backward()
    assert np.isfinite(p.grad.numpy()).all() and np.isfinite(q.grad.numpy()).all()


def test_ignore_index_and_padding_in_the_cross_entropy():
    """CE over [B, T, C] skips labels of -100 as torch's and paddle's cross_entropy do, and
    averages over the counted positions, as torch does.  (Paddle 3.3's CPU 'mean' with
    ignore_index divides by all positions: 10 counted of 12 gives 10/12 of torch's value.)"""
    rng = np.random.RandomState(10)
    logits = rng.randn(3, 4, 6).astype(np.float32)
    labels = rng.randint(0, 6, (3, 4))
    labels[0, 1] = labels[2, 3] = -100
    out = RDropCrossEntropy(0.0)(paddle.to_tensor(logits), None, paddle.to_tensor(labels))
    theirs = TF.cross_entropy(torch.tensor(logits).reshape(-1, 6), torch.tensor(labels).reshape(-1),
                              ignore_index=-100).item()
    paddle_sum = paddle.nn.functional.cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(labels),
                                                    ignore_index=-100, reduction="sum").item()
    np.testing.assert_allclose(out["loss"].item(), theirs, rtol=1e-6)
    np.testing.assert_allclose(out["loss"].item() * 10, paddle_sum, rtol=1e-6)
    keep = labels != -100
    keep[1, 0] = False  # a padded position with a real label: the mask removes it too
    masked = RDropCrossEntropy(0.0)(paddle.to_tensor(logits), None, paddle.to_tensor(labels),
                                    pad_mask=paddle.to_tensor(keep))
    expected = TF.cross_entropy(torch.tensor(logits)[torch.tensor(keep)], torch.tensor(labels)[torch.tensor(keep)])
    np.testing.assert_allclose(masked["loss"].item(), expected.item(), rtol=1e-6)


def test_stable_for_huge_logits_and_under_bf16():
    p = paddle.to_tensor([[1000.0, -1000.0, 0.0]])
    q = paddle.to_tensor([[-1000.0, 1000.0, 0.0]])
    loss = RDropLoss()(p, q).item()
    assert np.isfinite(loss) and loss == pytest.approx(2000.0, rel=1e-4)
    rng = np.random.RandomState(6)
    p32, q32 = rng.randn(4, 9).astype(np.float32), rng.randn(4, 9).astype(np.float32)
    full = RDropLoss()(paddle.to_tensor(p32), paddle.to_tensor(q32))
    half = RDropLoss()(paddle.to_tensor(p32).astype("bfloat16"), paddle.to_tensor(q32).astype("bfloat16"))
    assert half.dtype == paddle.float32
    np.testing.assert_allclose(half.item(), full.item(), rtol=3e-2)


def test_kl_batch_size_makes_the_kl_term_independent_of_the_split():
    rng = np.random.RandomState(7)
    p, q = (paddle.to_tensor(rng.randn(8, 5).astype(np.float32)) for _ in range(2))
    y = paddle.to_tensor(rng.randint(0, 5, 8))
    whole = RDropCrossEntropy(0.3, "vit_src", kl_batch_size=32)(p, q, y)
    halves = [RDropCrossEntropy(0.3, "vit_src", kl_batch_size=32)(p[i:i + 4], q[i:i + 4], y[i:i + 4])
              for i in (0, 4)]
    np.testing.assert_allclose(whole["loss"].item(), np.mean([h["loss"].item() for h in halves]), rtol=1e-6)
    plain = RDropCrossEntropy(0.3, "vit_src")(p, q, y)["kl"].item()
    np.testing.assert_allclose(whole["kl"].item(), plain * 32 / 8, rtol=1e-6)
