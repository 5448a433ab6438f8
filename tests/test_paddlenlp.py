"""RDropLoss against the real ``paddlenlp/losses/rdrop.py`` (paddlenlp 2.8.1's own file).

paddlenlp itself does not import beside today's huggingface_hub, so the wheel is
downloaded without dependencies and that one file is loaded on its own (it needs only
paddle).  Values agree for every reduction and for masked 'none'; with
``detach_target=True`` gradients agree too; the masked 'sum'/'mean'/'batchmean'
deviation is checked as documented.
"""
import importlib.util
import subprocess
import sys
import zipfile

import numpy as np
import paddle
import pytest

from rdrop_paddle.losses import RDropLoss

REDUCTIONS = ["none", "sum", "mean", "batchmean"]


@pytest.fixture(scope="module")
def PaddleNLPRDropLoss(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paddlenlp")
    res = subprocess.run([sys.executable, "-m", "pip", "download", "paddlenlp==2.8.1", "--no-deps",
                          "-d", str(folder), "-q"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"could not fetch the paddlenlp wheel from the registry: {res.stderr[-500:]}"
    (wheel,) = folder.glob("paddlenlp-2.8.1-*.whl")
    source = folder / "rdrop.py"
    source.write_bytes(zipfile.ZipFile(wheel).read("paddlenlp/losses/rdrop.py"))
    spec = importlib.util.spec_from_file_location("paddlenlp_rdrop", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RDropLoss


def _pair(shape, seed):
    rng = np.random.RandomState(seed)
    return [rng.randn(*shape).astype(np.float32) * 3 for _ in range(2)]


def _value_and_grads(loss_fn, p_np, q_np, *mask):
    p = paddle.to_tensor(p_np, stop_gradient=False)
    q = paddle.to_tensor(q_np, stop_gradient=False)
    loss = loss_fn(p, q, *mask)
    loss.backward()
    return loss.item(), p.grad.numpy(), q.grad.numpy()


@pytest.mark.parametrize("shape", [(8, 10), (4, 6, 10)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_values_and_detached_gradients_match_paddlenlp(PaddleNLPRDropLoss, shape, reduction):
    p, q = _pair(shape, 0)
    theirs = _value_and_grads(PaddleNLPRDropLoss(reduction), p, q)
    detached = _value_and_grads(RDropLoss(reduction, detach_target=True), p, q)
    full = _value_and_grads(RDropLoss(reduction), p, q)
    np.testing.assert_allclose(detached[0], theirs[0], rtol=1e-5)
    np.testing.assert_allclose(full[0], theirs[0], rtol=1e-5)
    for mine, ref in zip(detached[1:], theirs[1:]):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-7)
    assert not np.allclose(full[1], theirs[1], rtol=0.1), "the default keeps the full (official) gradient"


def test_masked_none_matches_paddlenlp_for_the_masks_it_accepts(PaddleNLPRDropLoss):
    p, q = _pair((4, 6, 10), 1)
    keep = np.random.RandomState(2).rand(4, 6) > 0.4
    accepted = 0
    for mask in (np.repeat(keep[..., None], 10, -1), keep[..., None], keep):
        try:
            theirs = _value_and_grads(PaddleNLPRDropLoss("none"), p, q, paddle.to_tensor(mask))
        except Exception:  # a shape paddlenlp's masked_select refuses
            continue
        accepted += 1
        mine = _value_and_grads(RDropLoss("none", detach_target=True), p, q, paddle.to_tensor(mask))
        np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-5)
        for a, b in zip(mine[1:], theirs[1:]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert accepted >= 1  # at least the full [B, T, C] mask


@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean"])
def test_masked_reductions_are_masked_where_paddlenlp_repeats_the_total(PaddleNLPRDropLoss, reduction):
    """paddlenlp reduces first and masks after: its value is the unmasked reduced loss once per
    kept element.  This package reduces over the kept elements (README, table of reductions)."""
    p, q = _pair((4, 6, 10), 3)
    keep = np.random.RandomState(4).rand(4, 6) > 0.4
    full_mask = paddle.to_tensor(np.repeat(keep[..., None], 10, -1))
    theirs = PaddleNLPRDropLoss(reduction)(paddle.to_tensor(p), paddle.to_tensor(q), full_mask).item()
    unmasked = RDropLoss(reduction)(paddle.to_tensor(p), paddle.to_tensor(q)).item()
    np.testing.assert_allclose(theirs, unmasked * keep.sum() * 10, rtol=1e-5)
    mine = RDropLoss(reduction)(paddle.to_tensor(p), paddle.to_tensor(q), full_mask).item()
    terms = RDropLoss("none")(paddle.to_tensor(p), paddle.to_tensor(q), full_mask).item()
    divisor = {"sum": 1, "mean": keep.sum() * 10, "batchmean": 4}[reduction]
    np.testing.assert_allclose(mine, terms / divisor, rtol=1e-5)
