"""Weight conversion from every supported format, checked by logits against HF transformers."""
import numpy as np
import paddle
import pytest
import torch

from helpers import Hostile, one_error_line, run_tool
from rdrop_paddle.alignment.reference import hf_logits, hf_vit
from rdrop_paddle.alignment.reference import state_of as hf_state
from rdrop_paddle.convert import convert_checkpoint, detect_format, load_checkpoint
from rdrop_paddle.errors import UnsafeFileError, UserInputError
from rdrop_paddle.models import build_model
from reference import to_google_npz, to_hf_classic, to_paddleclas, to_rdrop, to_timm

TINY = dict(hidden=192, layers=12, heads=3, image=32, patch=16, classes=10)  # ViT-Ti/16 at 32 px


@pytest.fixture(scope="module")
def reference():
    model = hf_vit(**TINY)
    images = np.random.RandomState(0).randn(3, 3, 32, 32).astype(np.float32)
    return model, hf_state(model), images, hf_logits(model, images)


def _write(path, state, kind):
    if kind == "npz":
        np.savez(path, **state)
    elif kind == "pdparams":
        paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path))
    elif kind == "safetensors":
        from safetensors.numpy import save_file

        save_file(state, str(path))
    else:
        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, str(path))
    return str(path)


def _paddle_logits(state, images, classes=10, image=32):
    model = build_model("vit_tiny_patch16_224", num_classes=classes, image_size=image)
    missing, unexpected = model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    assert not missing and not unexpected
    model.eval()
    return model(paddle.to_tensor(images)).numpy()


@pytest.mark.parametrize("fmt,writer,ext", [
    ("npz", lambda s: to_google_npz(s, heads=3), "npz"),
    ("rdrop", to_rdrop, "bin"),
    ("timm", to_timm, "safetensors"),
    ("timm", to_timm, "pth"),
    ("hf", lambda s: s, "safetensors"),
    ("hf", to_hf_classic, "bin"),
    ("paddleclas", to_paddleclas, "pdparams"),
])
def test_each_format_reproduces_hf_logits(tmp_path, reference, fmt, writer, ext):
    _, state, images, expected = reference
    path = _write(tmp_path / f"ckpt.{ext}", writer(state), ext)
    assert detect_format(load_checkpoint(path), path) == fmt
    for requested in ("auto", fmt):
        converted, notices = convert_checkpoint(path, requested, "vit_tiny_patch16_224", 10, 32)
        assert notices == []
        got = _paddle_logits(converted, images)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def _fine_tune_to_100_classes_at_64px(tmp_path, src):
    """Convert ``src`` (1000 classes, 32 px) for 100 classes at 64 px; the notices every format
    gives for that; ``(stdout, loaded state)``."""
    out = tmp_path / "out.pdparams"
    res = run_tool("tools/convert_weights.py", "--src", src, "--model", "vit_tiny_patch16_224",
                   "--num-classes", 100, "--image-size", 64, "--out", out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "notice: head re-initialised to zeros: checkpoint has 1000 classes, the model 100" in res.stdout
    assert "notice: position embeddings resized from a 2x2 to a 4x4 grid" in res.stdout
    return res.stdout, paddle.load(str(out))


def test_cli_fine_tuning_semantics(tmp_path, reference):
    """1000 -> 100 classes, pre_logits dropped, 2x2 -> 4x4 position grid, as the official code."""
    from scipy import ndimage

    model, state, _, _ = reference
    big = hf_vit(**{**TINY, "classes": 1000}, seed=1)
    src = _write(tmp_path / "ViT-Ti_16.npz", to_google_npz(hf_state(big), heads=3, pre_logits=True), "npz")
    stdout, loaded = _fine_tune_to_100_classes_at_64px(tmp_path, src)
    assert "notice: dropped the pre-logits layer" in stdout
    target = build_model("vit_tiny_patch16_224", num_classes=100, image_size=64)
    missing, unexpected = target.set_state_dict(loaded)
    assert not missing and not unexpected
    assert not loaded["head.weight"].numpy().any() and not loaded["head.bias"].numpy().any()
    # The official vit_src loader: scipy.ndimage.zoom(grid, (new/old, new/old, 1), order=1).
    pos = hf_state(big)["vit.embeddings.position_embeddings"]
    grid = pos[0, 1:].reshape(2, 2, -1)
    official = ndimage.zoom(grid, (4 / 2, 4 / 2, 1), order=1).reshape(1, 16, -1)
    np.testing.assert_allclose(loaded["pos_embed"].numpy()[:, 1:], official, atol=1e-7)
    np.testing.assert_array_equal(loaded["pos_embed"].numpy()[:, :1], pos[:, :1])


def _cli_error(tmp_path, src, *extra):
    out = tmp_path / "out.pdparams"
    out.write_bytes(b"previous")
    res = run_tool("tools/convert_weights.py", "--src", src, "--num-classes", 10, "--out", out, *extra)
    line = one_error_line(res)
    assert out.read_bytes() == b"previous", "a failed conversion must not touch the output"
    return line


def test_cli_errors_name_keys_and_shapes(tmp_path, reference):
    _, state, _, _ = reference
    npz = to_google_npz(state, heads=3)
    del npz["Transformer/encoderblock_3/MlpBlock_3/Dense_1/bias"]
    line = _cli_error(tmp_path, _write(tmp_path / "a.npz", npz, "npz"),
                      "--model", "vit_tiny_patch16_224", "--image-size", "32")
    assert "missing blocks.3.mlp.fc2.bias [192]" in line
    line = _cli_error(tmp_path, _write(tmp_path / "b.npz", to_google_npz(state, heads=3), "npz"),
                      "--model", "vit_small_patch16_224", "--image-size", "32")
    assert "shape of blocks.0.attn.qkv.weight: checkpoint [192, 576] vs model [384, 1152]" in line
    extra = {**to_timm(state), "blocks.0.attn.rel_pos": np.zeros((3, 3), np.float32)}
    line = _cli_error(tmp_path, _write(tmp_path / "c.safetensors", extra, "safetensors"),
                      "--model", "vit_tiny_patch16_224", "--image-size", "32")
    assert "unexpected keys for format timm: blocks.0.attn.rel_pos [3, 3]" in line
    line = _cli_error(tmp_path, str(tmp_path / "nope.npz"))
    assert "checkpoint not found" in line
    (tmp_path / "w.txt").write_text("x")
    assert "unknown checkpoint extension '.txt'" in _cli_error(tmp_path, str(tmp_path / "w.txt"))


def test_files_that_would_run_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.ones(2)}, "extra": Hostile(marker)}, str(tmp_path / "evil.pth"))
    with pytest.raises(UnsafeFileError, match=r"evil.pth: refusing to load it: the pickle calls io\.open"):
        load_checkpoint(str(tmp_path / "evil.pth"))
    paddle.save({"w": paddle.ones([2])}, str(tmp_path / "good.pdparams"))
    (tmp_path / "evil.pdparams").write_bytes(__import__("pickle").dumps({"w": Hostile(marker)}))
    with pytest.raises(UnsafeFileError, match="evil.pdparams"):
        load_checkpoint(str(tmp_path / "evil.pdparams"))
    assert not marker.exists()
    np.savez(tmp_path / "evil.npz", a=np.array([Hostile(marker)], dtype=object))
    with pytest.raises(UserInputError, match="refusing an .npz that needs pickle"):
        load_checkpoint(str(tmp_path / "evil.npz"))
    assert not marker.exists()


def test_half_precision_and_legacy_torch_files(tmp_path):
    state = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(), "b": torch.tensor([1.5, -2.0]).half(),
             "c": torch.tensor([0.15625, 3.0]).bfloat16()}
    torch.save(state, str(tmp_path / "half.pt"))
    got = load_checkpoint(str(tmp_path / "half.pt"))
    for k, v in state.items():
        np.testing.assert_array_equal(got[k], v.float().numpy(), err_msg=k)
    torch.save(state, str(tmp_path / "legacy.bin"), _use_new_zipfile_serialization=False)
    with pytest.raises(UserInputError, match="not a PyTorch zip file"):
        load_checkpoint(str(tmp_path / "legacy.bin"))


@pytest.mark.parametrize("args,needle", [
    (["--num-classes", 0], "--num-classes must be at least 1, got 0"),
    (["--num-classes", 10, "--image-size", 0], "image_size 0 is not a positive multiple of the patch size 16"),
    (["--num-classes", 10, "--image-size", 30], "image_size 30 is not a positive multiple"),
])
def test_cli_refuses_impossible_targets(tmp_path, reference, args, needle):
    src = _write(tmp_path / "a.safetensors", to_timm(reference[1]), "safetensors")
    res = run_tool("tools/convert_weights.py", "--src", src, "--model", "vit_tiny_patch16_224",
                   "--out", tmp_path / "o.pdparams", *args)
    assert needle in one_error_line(res)


def test_cli_refuses_a_corrupt_file_and_a_folder_as_output(tmp_path, reference):
    src = _write(tmp_path / "a.safetensors", to_timm(reference[1]), "safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(open(src, "rb").read()[:1000])
    res = run_tool("tools/convert_weights.py", "--src", cut, "--num-classes", 10, "--out", tmp_path / "o.pdparams")
    assert "cut.safetensors: not a readable .safetensors file" in one_error_line(res)
    (tmp_path / "dir.pdparams").mkdir()
    res = run_tool("tools/convert_weights.py", "--src", src, "--model", "vit_tiny_patch16_224", "--num-classes", 10,
                   "--image-size", 32, "--out", tmp_path / "dir.pdparams")
    assert "dir.pdparams is a directory, not a file name" in one_error_line(res)


def test_paddleclas_weights_fine_tune_to_new_classes(tmp_path):
    """A PaddleClas ViT_*-named .pdparams (1000 classes) -> 100 classes at a larger image size."""
    big = hf_vit(**{**TINY, "classes": 1000}, seed=2)
    src = _write(tmp_path / "ViT_tiny_pretrained.pdparams", to_paddleclas(hf_state(big)), "pdparams")
    _, loaded = _fine_tune_to_100_classes_at_64px(tmp_path, src)
    same = to_paddleclas(hf_state(big))["blocks.3.mlp.fc1.weight"]
    np.testing.assert_array_equal(loaded["blocks.3.mlp.fc1.weight"].numpy(), same)


@pytest.mark.slow
def test_x2paddle_route_matches_direct_route(tmp_path, reference):
    pytest.importorskip("x2paddle")
    _, state, images, expected = reference
    src = _write(tmp_path / "ViT-Ti_16.npz", to_google_npz(state, heads=3), "npz")
    direct, _ = convert_checkpoint(src, "auto", "vit_tiny_patch16_224", 10, 32)
    traced, _ = convert_checkpoint(src, "x2paddle", "vit_tiny_patch16_224", 10, 32)
    assert direct.keys() == traced.keys()
    for key in direct:
        np.testing.assert_array_equal(direct[key], traced[key], err_msg=key)
    np.testing.assert_array_equal(_paddle_logits(traced, images), _paddle_logits(direct, images))
    np.testing.assert_allclose(_paddle_logits(traced, images), expected, atol=1e-5, rtol=0)


def test_x2paddle_untraceable_op_is_named(monkeypatch):
    pytest.importorskip("x2paddle")
    from rdrop_paddle.convert import x2paddle_route

    class Unbind(torch.nn.Module):
        def forward(self, x):
            a, b = torch.unbind(x.reshape(2, -1), 0)
            return a + b

    def fake_module(hf, heads):
        return Unbind(), (1, 2)

    monkeypatch.setattr(x2paddle_route, "_hf_module", fake_module)
    state = to_timm(hf_state(hf_vit(hidden=64, layers=1, heads=4)))
    with pytest.raises(UserInputError, match=r"aten::unbind.*--format auto"):
        x2paddle_route.x2paddle_state_dict(state, "timm", num_heads=4)
