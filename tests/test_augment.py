"""Fine-tuning augmentations against timm's code, and their determinism."""
import numpy as np
import pytest
import torch
from PIL import Image

from rdrop_paddle.data.augment import color_jitter, random_erasing
from rdrop_paddle.data.mixup import Mixup, cutmix_box, mix
from rdrop_paddle.data.randaugment import RandAugment, parse_policy
from rdrop_paddle.data.transforms import EvalTransform, TrainTransform
from rdrop_paddle.errors import UserInputError
from timm_reference import timm_module


def _batch(n=6, c=3, size=16, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c, size, size)).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("lam", [0.3, 0.77])
def test_mixup_is_timms_for_the_same_lambda(lam, monkeypatch):
    timm_mixup = timm_module("mixup")
    x, y = _batch()
    monkeypatch.setattr(timm_mixup.np.random, "beta", lambda a, b: lam)
    reference = timm_mixup.Mixup(mixup_alpha=0.8, cutmix_alpha=0.0, prob=1.0, label_smoothing=0.0, num_classes=5)
    xt = torch.from_numpy(x.copy())
    yt = reference(xt, torch.from_numpy(y))[1]
    mixed, targets = mix(x, y, 5, lam)
    np.testing.assert_allclose(mixed, xt.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(targets, yt.numpy(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("lam,center", [(0.6, (3, 12)), (0.2, (0, 0)), (0.9, (15, 7))])
def test_cutmix_is_timms_for_the_same_lambda_and_box(lam, center, monkeypatch):
    timm_mixup = timm_module("mixup")
    x, y = _batch()
    monkeypatch.setattr(timm_mixup.np.random, "beta", lambda a, b: lam)
    centers = iter(center)
    monkeypatch.setattr(timm_mixup.np.random, "randint", lambda lo, hi, size=None: next(centers))
    reference = timm_mixup.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, prob=1.0, label_smoothing=0.0, num_classes=5)
    xt = torch.from_numpy(x.copy())
    yt = reference(xt, torch.from_numpy(y))[1]
    box, corrected = cutmix_box(x.shape, lam, center)
    mixed, targets = mix(x, y, 5, corrected, box)
    np.testing.assert_array_equal(mixed, xt.numpy())
    np.testing.assert_allclose(targets, yt.numpy(), rtol=0, atol=1e-7)
    assert not np.array_equal(mixed, x) or box[0] == box[1] or box[2] == box[3]


def test_mixup_draws_follow_the_micro_batch_position():
    """The same keys give the same mix on any worker; another position another one; off = one-hot."""
    x, y = _batch()
    op = Mixup(5, mixup=0.8, cutmix=1.0, prob=1.0, switch_prob=0.5)
    keys = [(i, (42, 1, 64 + i)) for i in range(6)]
    a, b = op(x, y, keys), op(x, y, keys)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    others = [op(x, y, [(i, (42, 1, 64 + 6 * k + i)) for i in range(6)])[1] for k in range(1, 6)]
    assert any(not np.array_equal(a[1], o) for o in others)
    np.testing.assert_allclose(a[1].sum(axis=1), 1.0, atol=1e-6)
    off = Mixup(5, mixup=0.8, prob=0.0)(x, y, keys)
    np.testing.assert_array_equal(off[0], x)
    np.testing.assert_array_equal(off[1], np.eye(5, dtype=np.float32)[y])


def _image(mode="RGB", size=24, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


class _Sign:
    """A generator stand-in whose ``random()`` fixes the op's sign (ours negates below 0.5)."""

    def __init__(self, negate: bool):
        self.draw = 0.1 if negate else 0.9

    def random(self):
        return self.draw


TIMM_NAMES = {"Posterize": "PosterizeIncreasing", "Solarize": "SolarizeIncreasing", "Color": "ColorIncreasing",
              "Contrast": "ContrastIncreasing", "Brightness": "BrightnessIncreasing",
              "Sharpness": "SharpnessIncreasing"}


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("magnitude", [3.0, 9.0, 10.0])
def test_randaugment_ops_are_timms(mode, magnitude, monkeypatch):
    """Each increasing-policy op at a magnitude and sign equals timm's AugmentOp there."""
    aa = timm_module("auto_augment")
    image = _image(mode)
    ours = RandAugment("rand-m9-mstd0.5-inc1", fill=(128, 128, 128), interpolation=Image.BILINEAR)
    hparams = {"img_mean": (128, 128, 128) if mode == "RGB" else 128, "interpolation": Image.BILINEAR, "translate_pct": 0.45}
    for name in ours.names:
        if name == "Posterize" and magnitude == 10.0:  # 0 bits: black (timm fails on Pillow >= 11)
            out = ours.ops[name](image.copy(), magnitude, _Sign(False), 128, ours.resample)
            assert not np.asarray(out).any()
            continue
        for negate in (False, True):
            monkeypatch.setattr(aa.random, "random", lambda: 0.9 if negate else 0.1)
            op = aa.AugmentOp(TIMM_NAMES.get(name, name), prob=1.0, magnitude=magnitude, hparams=hparams)
            op.magnitude_std = 0
            expected = np.asarray(op(image.copy()))
            got = np.asarray(ours.ops[name](image.copy(), magnitude, _Sign(negate), ours.fill if mode == "RGB"
                                            else ours.fill[0], ours.resample))
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} m={magnitude} negate={negate}")


def test_randaugment_policy_strings():
    assert parse_policy("rand-m9-mstd0.5-inc1") == {"n": 2, "m": 9.0, "mstd": 0.5, "mmax": 10.0, "p": 0.5, "inc": True}
    assert parse_policy("rand-n3-m7")["n"] == 3
    for bad in ("auto-v0", "rand-m9-x3", "rand-mabc", "rand-n99", "rand-p2"):
        with pytest.raises(UserInputError, match="Data.auto_augment"):
            parse_policy(bad)


def test_random_erasing_box_and_values_follow_timms_procedure():
    x = np.zeros((3, 32, 32), np.float32)
    out = random_erasing(x, 1.0, np.random.default_rng(5))
    changed = np.argwhere((out != 0).any(axis=0))
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0) + 1
    area = (bottom - top) * (right - left)
    assert 0.02 * 32 * 32 * 0.8 <= area <= 32 * 32 / 3 * 1.2, area  # area fraction 2 %..1/3 (rounding)
    assert 0.3 / 1.5 <= (bottom - top) / (right - left) <= 1.5 / 0.3
    erased = out[:, top:bottom, left:right]
    assert abs(erased.mean()) < 0.3 and 0.7 < erased.std() < 1.3  # per-pixel standard normal ("pixel" mode)
    np.testing.assert_array_equal(out, random_erasing(x, 1.0, np.random.default_rng(5)))
    assert random_erasing(x, 0.0, np.random.default_rng(5)) is x


def test_color_jitter_factors_are_torchvision_ranges():
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    values = {int(np.asarray(color_jitter(grey, 0.4, np.random.default_rng(s)))[0, 0, 0]) for s in range(200)}
    assert min(values) >= int(100 * 0.6 ** 2) - 1 and max(values) <= 140 and len(values) > 10


def test_defaults_are_the_official_pipeline_draw_for_draw():
    """All options off: the same output and the same generator state as crop + normalise alone."""
    image, plain = _image(), TrainTransform(16)
    explicit = TrainTransform(16, (0.05, 1.0), "bilinear", 0.0, 0.0, "", 0.0)
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(plain(image, r1), explicit(image, r2))
    assert r1.random() == r2.random()


def test_all_options_are_a_function_of_the_sample_seed():
    tf = TrainTransform(16, (0.08, 1.0), "bicubic", 0.5, 0.4, "rand-m9-mstd0.5-inc1", 0.25)
    outs = [tf(_image(), np.random.default_rng([42, 1, p])) for p in range(8)]
    again = [tf(_image(), np.random.default_rng([42, 1, p])) for p in range(8)]
    for a, b in zip(outs, again):
        np.testing.assert_array_equal(a, b)
    assert len({o.tobytes() for o in outs}) == 8


def test_eval_crop_pct_is_timms_resize_then_centre_crop():
    """crop_pct 0.875 at 16 px: shorter side to floor(16 / 0.875) = 18, centre 16 x 16."""
    image = _image(size=40).crop((0, 0, 40, 30))  # 40 x 30
    out = EvalTransform(16, crop_pct=0.875, interpolation="bicubic")(image)
    resized = image.resize((24, 18), Image.BICUBIC)  # 18 / 30 * 40 = 24
    expected = (np.asarray(resized.crop((4, 1, 20, 17)), np.float32).transpose(2, 0, 1) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(out, expected, atol=1e-6)
    full = EvalTransform(16)(image)
    ref = (np.asarray(image.resize((16, 16), Image.BILINEAR), np.float32).transpose(2, 0, 1) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(full, ref, atol=1e-6)
