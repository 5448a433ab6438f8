"""R-Drop on a model the package does not know: a Transformer token tagger on padded
sequences, called paddlenlp-style with ``input_ids`` / ``attention_mask``."""
import numpy as np
import paddle
import pytest

from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.losses.two_pass import rdrop_forward, two_pass

VOCAB, CLASSES, PAD = 40, 5, 0


class Tagger(paddle.nn.Layer):
    """Embedding + TransformerEncoder + per-token head; returns a dict, as paddlenlp models can."""

    def __init__(self, dropout=0.1, dim=32):
        super().__init__()
        self.embed = paddle.nn.Embedding(VOCAB, dim)
        layer = paddle.nn.TransformerEncoderLayer(dim, 4, 64, dropout=dropout)
        self.encoder = paddle.nn.TransformerEncoder(layer, 2)
        self.head = paddle.nn.Linear(dim, CLASSES)

    def forward(self, input_ids, attention_mask):
        keys = attention_mask[:, None, None, :].astype("bool")  # True = attend (Paddle's bool mask)
        return {"logits": self.head(self.encoder(self.embed(input_ids), src_mask=keys))}


def _batch(pad_token=PAD, seed=0):
    rng = np.random.RandomState(seed)
    lengths = np.array([7, 4, 6, 2])
    mask = np.arange(7)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.randint(1, VOCAB, (4, 7)), pad_token)
    labels = np.where(mask, rng.randint(0, CLASSES, (4, 7)), -100)
    return ({"input_ids": paddle.to_tensor(ids), "attention_mask": paddle.to_tensor(mask.astype("int64"))},
            paddle.to_tensor(labels), paddle.to_tensor(mask))


def _loss_and_grads(model, mode, inputs, labels, mask, seed=0):
    paddle.seed(seed)
    out = rdrop_forward(model, RDropCrossEntropy(0.3, "readme"), inputs, labels, mode, output="logits",
                        pad_mask=mask)
    out["loss"].backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None}
    model.clear_gradients()
    return out, grads


def test_concat_equals_twice_without_dropout():
    paddle.seed(1)
    model = Tagger(dropout=0.0)
    model.train()
    inputs, labels, mask = _batch()
    concat, g_concat = _loss_and_grads(model, "concat", inputs, labels, mask)
    twice, g_twice = _loss_and_grads(model, "twice", inputs, labels, mask)
    np.testing.assert_allclose(concat["loss"].item(), twice["loss"].item(), rtol=1e-6)
    assert concat["kl"].item() == pytest.approx(0.0, abs=1e-6)
    assert g_concat.keys() == g_twice.keys() and g_concat
    for name in g_concat:
        np.testing.assert_allclose(g_concat[name], g_twice[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_padded_positions_contribute_nothing():
    """Changing the pad tokens leaves loss and gradients unchanged (dropout on, same seed)."""
    paddle.seed(2)
    model = Tagger(dropout=0.1)
    model.train()
    runs = [_loss_and_grads(model, "concat", *_batch(pad_token=tok)) for tok in (PAD, 17)]
    (a, ga), (b, gb) = runs
    assert a["kl"].item() > 0
    np.testing.assert_allclose(a["loss"].item(), b["loss"].item(), rtol=1e-6)
    for name in ga:
        if name != "embed.weight":  # pad rows of the embedding are looked up, with zero gradient
            np.testing.assert_allclose(ga[name], gb[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_few_training_steps_stay_finite():
    paddle.seed(3)
    model = Tagger(dropout=0.1)
    opt = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters())
    model.train()
    losses = []
    for step in range(4):
        inputs, labels, mask = _batch(seed=step)
        out = rdrop_forward(model, RDropCrossEntropy(0.3, "readme"), inputs, labels, "concat",
                            output="logits", pad_mask=mask)
        out["loss"].backward()
        assert all(np.isfinite(p.grad.numpy()).all() for p in model.parameters() if p.grad is not None)
        opt.step()
        opt.clear_grad()
        losses.append(out["loss"].item())
    assert np.isfinite(losses).all()


def test_tensor_tuple_and_dict_inputs_and_outputs():
    lin = paddle.nn.Linear(3, 2)
    x = paddle.randn([5, 3])
    p, q = two_pass(lin, x)
    assert p.shape == q.shape == [5, 2]

    class TwoIn(paddle.nn.Layer):
        def forward(self, a, b):
            return a + b, "extra"

    p, q = two_pass(TwoIn(), (x, x), mode="twice", output=0)
    assert p.shape == [5, 3]
    with pytest.raises(TypeError, match="field 1 is a str, not a tensor"):
        two_pass(TwoIn(), (x, x), output=1)
    with pytest.raises(ValueError, match="concat, twice"):
        two_pass(lin, x, mode="thrice")
