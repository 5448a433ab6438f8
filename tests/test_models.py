"""ViT family: parameter counts derived by hand, shapes, determinism, position-embedding resize."""
import numpy as np
import paddle
import pytest

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.models import MODELS, build_model, interpolate_pos_embed

SIZES = {"tiny": (192, 12), "small": (384, 12), "base": (768, 12), "large": (1024, 24)}


def vit_param_count(dim, depth, image, patch=16, chans=3, classes=1000, mlp=4):
    """Parameters of a ViT, counted layer by layer."""
    tokens = (image // patch) ** 2 + 1
    embed = chans * patch * patch * dim + dim + dim + tokens * dim  # conv, cls, pos
    block = (2 * dim) * 2 + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) \
        + (dim * mlp * dim + mlp * dim) + (mlp * dim * dim + dim)
    return embed + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("image", [224, 384])
def test_variant_parameter_counts(size, image):
    with paddle.LazyGuard():  # shapes only: skip initialising ViT-L's 300M weights
        model = build_model(f"vit_{size}_patch16_{image}", num_classes=1000)
    n = sum(int(np.prod(p.shape)) for p in model.parameters())
    assert n == vit_param_count(*SIZES[size], image)


def test_published_vit_b16_count():
    # ViT-B/16 at 224 px with a 1000-class head: 86,567,656 parameters (timm, Google).
    assert vit_param_count(768, 12, 224) == 86_567_656


@pytest.mark.parametrize("name,shape", [("vit_tiny_patch16_224", [2, 3, 224, 224]),
                                        ("vit_tiny_patch16_384", [1, 3, 32, 32]),
                                        ("vit_nano_patch4_8", [3, 1, 8, 8])])
def test_forward_shape(name, shape):
    model = build_model(name, num_classes=7, image_size=shape[-1])
    model.eval()
    assert model(paddle.randn(shape)).shape == [shape[0], 7]


def test_unknown_model_lists_valid_names():
    with pytest.raises(UserInputError, match="vit_base_patch16_224") as e:
        build_model("resnet50")
    assert "resnet50" in str(e.value)
    assert set(MODELS) >= {f"vit_{s}_patch16_{i}" for s in SIZES for i in (224, 384)}


def test_same_seed_same_weights_and_dropout():
    x = paddle.to_tensor(np.random.RandomState(0).randn(4, 1, 8, 8).astype("float32"))

    def run(seed):
        paddle.seed(seed)
        model = build_model("vit_nano_patch4_8", dropout=0.3)
        model.train()
        return model.state_dict()["head.weight"].numpy(), model(x).numpy(), model(x).numpy()

    w1, a1, b1 = run(0)
    w2, a2, b2 = run(0)
    w3, _, _ = run(1)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(a1, b1), "two dropout passes must differ"
    assert not np.array_equal(w1, w3)


def test_pos_embed_resize_is_bilinear_on_the_grid():
    # A field linear in (row, col) is reproduced exactly by first-order zoom that maps
    # corner to corner: new index i samples old coordinate i * (old - 1) / (new - 1).
    old, new, dim = 4, 7, 3
    rows, cols = np.meshgrid(np.arange(old), np.arange(old), indexing="ij")
    coef = np.array([[1.0, -2.0, 0.5]])
    grid = rows[..., None] * coef + cols[..., None] * 3.0 + 0.25
    cls = np.full((1, 1, dim), 9.0)
    pos = np.concatenate([cls, grid.reshape(1, old * old, dim)], axis=1)
    out = interpolate_pos_embed(pos, new)
    assert out.shape == (1, new * new + 1, dim)
    np.testing.assert_array_equal(out[:, :1], cls)
    r, c = np.meshgrid(np.arange(new), np.arange(new), indexing="ij")
    scale = (old - 1) / (new - 1)
    expect = (r * scale)[..., None] * coef + (c * scale)[..., None] * 3.0 + 0.25
    np.testing.assert_allclose(out[0, 1:].reshape(new, new, dim), expect, atol=1e-10)
    np.testing.assert_array_equal(interpolate_pos_embed(pos, old), pos)


def test_resized_pos_embed_loads_at_new_image_size():
    small = build_model("vit_nano_patch4_8", image_size=8)
    big = build_model("vit_nano_patch4_8", image_size=12)
    state = {k: v.numpy() for k, v in small.state_dict().items()}
    state["pos_embed"] = interpolate_pos_embed(state["pos_embed"], 3)
    big.set_state_dict(state)
    big.eval()
    assert big(paddle.randn([2, 1, 12, 12])).shape == [2, 10]


def test_dropout_sites_default_to_the_official_model():
    """vit_src: dropout after the embeddings and in the MLP; the attention projection uses the
    attention rate (0 by default).  proj_dropout=dropout gives the timm/JAX sites."""
    def rates(model):
        return {n: float(getattr(l, "p", 0.0)) for n, l in model.named_sublayers() if "Drop" in type(l).__name__
                and "DropPath" not in type(l).__name__}

    official = rates(build_model("vit_nano_patch4_8", dropout=0.1))
    assert {n for n, p in official.items() if p > 0} == {"pos_drop"} | {f"blocks.{i}.mlp.drop" for i in range(4)}
    timm_style = rates(build_model("vit_nano_patch4_8", dropout=0.1, proj_dropout=0.1))
    assert {n for n, p in timm_style.items() if p > 0} == {n for n, p in official.items() if p > 0} | {
        f"blocks.{i}.attn.proj_drop" for i in range(4)}
    attn = rates(build_model("vit_nano_patch4_8", attn_dropout=0.05))
    assert attn["blocks.0.attn.attn_drop"] == attn["blocks.0.attn.proj_drop"] == 0.05
