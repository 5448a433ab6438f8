"""Activation recomputation (``Model.recompute``) is exact: with dropout on, training with and
without it ends with bit-identical weights — one process, ``mode: twice``, and 2-process data
parallel with gradient accumulation (``no_sync``)."""
import numpy as np
import pytest

from helpers import train_ok
from test_training import newest, same_weights

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

BASE = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=6", "-o", "Global.eval_every=1000",
        "-o", "Model.dropout=0.1", "-o", "Model.attn_dropout=0.1", "-o", "Model.drop_path=0.1"]


def _pair(tmp_path, *extra, launch=0):
    for flag in ("false", "true"):
        out = tmp_path / f"recompute_{flag}"
        train_ok(*BASE, "-o", f"Global.output_dir={out}", "-o", f"Model.recompute={flag}", *extra,
                 launch=launch, log_dir=tmp_path / f"log_{flag}")
    return newest(tmp_path / "recompute_false")[1], newest(tmp_path / "recompute_true")[1]


@pytest.mark.parametrize("mode", ["concat", "twice"])
def test_recompute_gives_identical_weights_with_dropout_on(tmp_path, mode):
    plain, recomputed = _pair(tmp_path, "-o", f"Loss.mode={mode}")
    assert same_weights(plain, recomputed)


def test_recompute_is_exact_under_data_parallel_with_accumulation(tmp_path):
    plain, recomputed = _pair(tmp_path, "-o", "Optimizer.accum_steps=2", launch=2)
    assert same_weights(plain, recomputed)


def test_dropout_is_really_on(tmp_path):
    """The control: another dropout seed changes the weights, so the equality above is not vacuous."""
    import paddle

    from rdrop_paddle.models import build_model

    paddle.seed(0)
    model = build_model("vit_nano_patch4_8", dropout=0.1, recompute=True)
    model.train()
    x = paddle.randn([2, 1, 8, 8])
    x.stop_gradient = False
    a, b = model(x), model(x)
    assert not np.array_equal(a.numpy(), b.numpy())
