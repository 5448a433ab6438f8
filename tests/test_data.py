"""Data loading on genuine formats: a tiny cifar-100-python.tar.gz with the real pickle layout."""
import io
import pickle
import tarfile

import numpy as np
import pytest

from helpers import run_tool
from rdrop_paddle.config import DataConfig
from rdrop_paddle.data import build_datasets
from rdrop_paddle.data.digits import load_digits_split
from rdrop_paddle.errors import UserInputError


def _split(rng, n):
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    return {b"filenames": [f"img_{i}.png".encode() for i in range(n)], b"batch_label": b"tiny",
            b"fine_labels": rng.randint(0, 100, n).tolist(),
            b"coarse_labels": rng.randint(0, 20, n).tolist(), b"data": data}


def make_cifar100(path, n_train=24, n_test=10):
    """Write ``cifar-100-python.tar.gz`` as the original: pickled dicts with bytes keys."""
    rng = np.random.RandomState(0)
    splits = {"train": _split(rng, n_train), "test": _split(rng, n_test),
              "meta": {b"fine_label_names": [b"c%d" % i for i in range(100)]}}
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in splits.items():
            raw = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return splits


def test_cifar100_archive_and_folder_layout(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    raw = make_cifar100(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x")
    mount = tmp_path / "datasets" / "data76994"  # AI Studio: one folder per mounted data set
    mount.mkdir(parents=True)
    (mount / archive.name).write_bytes(archive.read_bytes())
    for root in (archive, tmp_path / "x", tmp_path / "x" / "cifar-100-python", tmp_path / "datasets"):
        train, val = build_datasets(DataConfig(name="cifar100", root=str(root)), image_size=32)
        assert (len(train), len(val)) == (24, 10)
        image, label = val[3]
        assert label == raw["test"][b"fine_labels"][3]
        # Resize to the native 32 px is the identity: pixels come back from the RGB planes.
        planes = raw["test"][b"data"][3].reshape(3, 32, 32).astype(np.float32) / 255.0
        np.testing.assert_allclose(np.asarray(image), (planes - 0.5) / 0.5, atol=1e-6)
    image, _ = train[0]
    assert np.asarray(image).shape == (3, 32, 32)


def test_cifar100_errors(tmp_path):
    with pytest.raises(UserInputError, match="CIFAR-100 not found at .*missing.tar.gz"):
        build_datasets(DataConfig(name="cifar100", root=str(tmp_path / "missing.tar.gz")), 32)
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(UserInputError, match="not a readable tar archive"):
        build_datasets(DataConfig(name="cifar100", root=str(bogus)), 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no cifar-100-python.tar.gz"):
        build_datasets(DataConfig(name="cifar100", root=str(tmp_path / "empty")), 32)


def test_digits_split_is_fixed_by_split_seed_and_disjoint():
    a, b = load_digits_split(0.2, 0), load_digits_split(0.2, 0)
    np.testing.assert_array_equal(a["val"][1], b["val"][1])
    assert len(a["val"][1]) == 359 and len(a["train"][1]) == 1438
    train_rows = {x.tobytes() for x in a["train"][0]}
    # The digits set has a handful of exact duplicate images; the split itself is disjoint.
    assert sum(x.tobytes() in train_rows for x in a["val"][0]) < 10
    c = load_digits_split(0.2, 1)
    assert not np.array_equal(a["val"][1], c["val"][1])
    assert a["train"][0].min() == -1.0 and a["train"][0].max() == 1.0


def test_train_and_eval_on_tiny_cifar100(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    make_cifar100(archive, n_train=16, n_test=6)
    common = ["-c", "configs/vit_cifar100.yaml", "-o", f"Data.root={archive}",
              "-o", f"Global.output_dir={tmp_path / 'out'}", "-o", "Global.device=cpu",
              "-o", "Model.name=vit_tiny_patch16_224", "-o", "Model.image_size=32",
              "-o", "Data.num_workers=0"]
    res = run_tool("tools/train.py", *common, "-o", "Global.max_steps=2", "-o", "Data.batch_size=8",
                   "-o", "Optimizer.accum_steps=2", "-o", "Global.eval_every=2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "global batch 8 = 4 x 2 accum x 1 card(s)" in res.stdout
    res = run_tool("tools/eval.py", *common)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "(6 images)" in res.stdout
