"""Data on genuine formats, hostile and broken files, the sample stream and the loaders."""
import io
import pickle
import tarfile

import numpy as np
import pytest

from helpers import Hostile, cifar_split, make_cifar100, write_tar
from rdrop_paddle.config import DataConfig
from rdrop_paddle.data import build_datasets, class_names
from rdrop_paddle.data.dataset import ImageDataset
from rdrop_paddle.data.digits import load_digits_split
from rdrop_paddle.data.loader import Loader
from rdrop_paddle.data.sampler import SampleStream, batch_plan, eval_batches
from rdrop_paddle.errors import DataLoadingError, UnsafeFileError, UserInputError


def _cifar(root, size=32):
    return build_datasets(DataConfig(name="cifar100", root=str(root)), size, 100)


def test_cifar100_archive_and_folder_layout(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    raw = make_cifar100(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x")
    mount = tmp_path / "datasets" / "data76994"  # AI Studio: one folder per mounted data set
    mount.mkdir(parents=True)
    (mount / archive.name).write_bytes(archive.read_bytes())
    for root in (archive, tmp_path / "x", tmp_path / "x" / "cifar-100-python", tmp_path / "datasets"):
        train, val = _cifar(root)
        assert (len(train), len(val)) == (24, 10)
        image, label = val[3]
        assert label == raw["test"][b"fine_labels"][3]
        # Resize to the native 32 px is the identity: pixels come back from the RGB planes.
        planes = raw["test"][b"data"][3].reshape(3, 32, 32).astype(np.float32) / 255.0
        np.testing.assert_allclose(image, (planes - 0.5) / 0.5, atol=1e-6)
        assert train.class_names[7] == "c7"
    assert class_names(DataConfig(name="cifar100", root=str(archive)))[:2] == ["c0", "c1"]
    assert np.asarray(train[0][0]).shape == (3, 32, 32)


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.n = n

    def readable(self):
        return True

    def readinto(self, buffer):
        k = min(len(buffer), self.n)
        buffer[:k] = bytes(k)
        self.n -= k
        return k


def test_cifar100_archives_are_read_once_within_bounds(tmp_path, monkeypatch):
    """Issue 29.3: an archive that inflates to gigabytes, or holds a million members, was read
    to its end (three times); now it is one pass, refused at the bound."""
    import bz2

    from rdrop_paddle.data import cifar100

    bomb = tmp_path / "bomb.tar.bz2"  # 22 KB that unpack to 300 MB of zeros before the splits
    splits = {name: pickle.dumps(obj, protocol=2) for name, obj in
              (("train", cifar_split(np.random.RandomState(0), 4)), ("test", cifar_split(np.random.RandomState(1), 2)))}
    with bz2.open(bomb, "wb", compresslevel=1) as fh, tarfile.open(fileobj=fh, mode="w|") as tar:
        info = tarfile.TarInfo("cifar-100-python/padding")
        info.size = 300 << 20
        tar.addfile(info, io.BufferedReader(_Zeros(info.size)))
        for name, raw in splits.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UserInputError, match=f"bomb.tar.bz2: unpacks to more than {256 << 20:,} bytes"):
        _cifar(bomb)
    many = tmp_path / "many.tar.gz"
    with tarfile.open(many, "w:gz") as tar:
        for i in range(1000):
            tar.addfile(tarfile.TarInfo(f"cifar-100-python/empty{i}"), io.BytesIO(b""))
    with pytest.raises(UserInputError, match="many.tar.gz: more than 100 members"):
        _cifar(many)
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    for suffix, mode in (("gz", "w:gz"), ("bz2", "w:bz2"), ("xz", "w:xz")):  # and each compression
        archive = tmp_path / f"cifar-100-python.tar.{suffix}"
        with real_open(archive, mode) as tar:
            for name, raw in splits.items():
                info = tarfile.TarInfo(f"cifar-100-python/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        opened.clear()
        train, val = _cifar(archive)
        assert (len(train), len(val), len(opened)) == (4, 2, 1)


def test_cifar100_errors(tmp_path):
    with pytest.raises(UserInputError, match="CIFAR-100 not found at .*missing.tar.gz"):
        _cifar(tmp_path / "missing.tar.gz")
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(UserInputError, match="not a readable tar archive"):
        _cifar(bogus)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no cifar-100-python.tar.gz"):
        _cifar(tmp_path / "empty")
    good = tmp_path / "good" / "cifar-100-python.tar.gz"
    good.parent.mkdir()
    make_cifar100(good, n_train=200)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserInputError, match="cut.tar.gz: not a readable tar archive, or truncated"):
        _cifar(cut)


@pytest.mark.parametrize("label", [-1, 100])
def test_labels_outside_the_classes_are_named(tmp_path, label):
    rng = np.random.RandomState(0)
    train = cifar_split(rng, 6)
    train[b"fine_labels"][4] = label
    archive = tmp_path / "cifar-100-python.tar.gz"
    write_tar(archive, {"train": pickle.dumps(train, protocol=2),
                        "test": pickle.dumps(cifar_split(rng, 3), protocol=2)})
    with pytest.raises(UserInputError, match=f"label {label} at index 4 is not a class in \\[0, 100\\)"):
        _cifar(archive)


def test_hostile_archive_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    rng = np.random.RandomState(0)
    evil = cifar_split(rng, 4)
    evil[b"batch_label"] = Hostile(marker)
    archive = tmp_path / "cifar-100-python.tar.gz"
    write_tar(archive, {"train": pickle.dumps(evil, protocol=2),
                        "test": pickle.dumps(cifar_split(rng, 2), protocol=2)})
    with pytest.raises(UnsafeFileError, match=r"cifar-100-python/train: refusing to load it: the pickle "
                                              r"calls io\.open"):
        _cifar(archive)
    assert not marker.exists()


def test_digits_split_is_fixed_by_split_seed_and_disjoint():
    a, b = load_digits_split(0.2, 0), load_digits_split(0.2, 0)
    np.testing.assert_array_equal(a["val"][1], b["val"][1])
    assert len(a["val"][1]) == 359 and len(a["train"][1]) == 1438
    train_rows = {x.tobytes() for x in a["train"][0]}
    # The digits set has a handful of exact duplicate images; the split itself is disjoint.
    assert sum(x.tobytes() in train_rows for x in a["val"][0]) < 10
    assert not np.array_equal(a["val"][1], load_digits_split(0.2, 1)["val"][1])
    assert a["train"][0].dtype == np.uint8 and a["train"][0].max() == 255  # 16 * 255 / 16


def _steps(size, global_batch, world, accum, steps, seed=7, start=0):
    """The samples of each step, gathered from every card's micro-batches."""
    micro, accum = batch_plan(global_batch, world, accum)
    streams = [iter(SampleStream(size, micro, seed, r, world, start)) for r in range(world)]
    out = []
    for _ in range(steps):
        step = []
        for _ in range(accum):
            for s in streams:
                step += next(s)
        out.append(sorted(step))
    return out


@pytest.mark.parametrize("world,accum", [(2, 1), (1, 3), (3, 2), (6, 1)])
def test_every_card_count_sees_the_same_samples_for_any_data_size(world, accum):
    reference = _steps(1001, 18, 1, 1, steps=130)  # 1001 = 7 x 11 x 13: no split divides it
    assert _steps(1001, 18, world, accum, steps=130) == reference
    positions = [p for step in reference for _, (_, _, p) in step]
    assert sorted(positions) == list(range(130 * 18))  # nothing dropped, nothing twice
    epoch0 = [i for step in reference for i, (_, _, p) in step if p < 1001]
    assert sorted(epoch0) == list(range(1001))  # each epoch is a permutation


def test_resume_position_and_huge_seeds():
    whole = _steps(100, 12, 2, 2, steps=20)
    assert _steps(100, 12, 2, 2, steps=11, start=9 * 12) == whole[9:]
    for seed in (2 ** 40, 2 ** 63 - 1, 0):
        assert len(_steps(100, 12, 2, 1, steps=3, seed=seed)) == 3
    assert _steps(100, 12, 1, 1, 2, seed=1) != _steps(100, 12, 1, 1, 2, seed=2)


def test_eval_shards_cover_each_sample_once():
    shards = [eval_batches(359, 64, r, 2) for r in range(2)]
    seen = sorted(i for shard in shards for batch in shard for i in batch)
    assert seen == list(range(359)) and max(len(b) for s in shards for b in s) == 64


class _Failing(ImageDataset):
    def __getitem__(self, key):
        if (key[0] if isinstance(key, tuple) else key) == 5:
            raise ValueError("corrupt sample 5")
        return super().__getitem__(key)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_sample_ends_the_loop_with_its_error(workers):
    ds = _Failing(np.zeros((16, 1, 2, 2), np.float32), np.zeros(16, np.int64))
    with pytest.raises(DataLoadingError, match="corrupt sample 5"):
        for _ in Loader(ds, SampleStream(16, 4, seed=0), workers):
            pass


def test_augmentation_does_not_depend_on_workers(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    make_cifar100(archive, n_train=12)
    train, _ = _cifar(archive, size=48)
    batches = {}
    for workers in (0, 2):
        it = iter(Loader(train, SampleStream(len(train), 4, seed=3), workers))
        batches[workers] = [next(it)[0].numpy() for _ in range(5)]
    for a, b in zip(batches[0], batches[2]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batches[0][0], batches[0][3])  # epoch 2 crops differ from epoch 1
