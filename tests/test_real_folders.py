"""Image folders and lists as users have them (issue 35): links and special files, paths
outside the data root, macOS and Windows leftovers, phone photos, images Pillow half-supports.
Each recipe is built here, in the format the user's tool writes."""
import io
import os
import shutil
import struct

import numpy as np
import pytest
from PIL import Image

from helpers import one_error_line, run_tool
from rdrop_paddle.commands.demo_images import write_demo_images
from rdrop_paddle.config import load_config
from rdrop_paddle.data import build_datasets
from rdrop_paddle.data.decode import read_image
from rdrop_paddle.deploy.predictor import list_images
from rdrop_paddle.errors import UserInputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "digits"
    write_demo_images(str(out), size=8)
    return out


@pytest.fixture
def root(demo, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(demo, copy)
    return copy


def _folder(root, *overrides):
    return build_datasets(load_config("configs/vit_own_data.yaml", [f"Data.root={root}", *overrides]).Data, 8, 0, 1)


def _listed(root, train_lines=None, labels=None, *overrides):
    if train_lines is not None:
        (root / "train_list.txt").write_bytes(train_lines)
    if labels is not None:
        (root / "labels.txt").write_bytes(labels)
    return _folder(root, "Data.name=filelist", f"Data.train_list={root / 'train_list.txt'}",
                   f"Data.val_list={root / 'val_list.txt'}",
                   *([f"Data.label_list={root / 'labels.txt'}"] if labels is not None else []), *overrides)


def _error(call) -> str:
    with pytest.raises(UserInputError) as e:
        call()
    return str(e.value)


@pytest.mark.parametrize("special", ["fifo", "dev_zero", "dev_urandom"])
def test_a_fifo_or_a_link_to_a_device_is_one_line_not_a_hang(root, special):
    path = root / "train" / "four" / "special.png"
    if special == "fifo":
        os.mkfifo(path)
    else:
        os.symlink(f"/dev/{special.split('_')[1]}", path)
    res = run_tool("tools/train.py", "-c", "configs/vit_own_data.yaml", "-o", f"Data.root={root}", "-o", "Global.device=cpu",
                   "-o", f"Global.output_dir={root / 'run'}", timeout=120)
    line = one_error_line(res)
    assert str(path) in line and ("a FIFO" in line or "a device" in line) and not (root / "run").exists()
    assert "not an image file" in _error(lambda: read_image(str(path), 3))  # infer's reader too


def test_a_huge_label_without_a_label_list_is_refused_before_any_list_is_built(root):
    for label in (b"1000000000000", b"50000000"):
        message = _error(lambda: _listed(root, b"train/four/" + sorted(os.listdir(root / "train" / "four"))[0].encode()
                                         + b" " + label + b"\ntrain/zero/" + sorted(os.listdir(root / "train" / "zero"))[0].encode()
                                         + b" 0\n"))
        assert f"label {int(label)} is not a class id [0, 100000)" in message


@pytest.mark.parametrize("label", ["--1", "²", "1.5", "٣"])
def test_labels_and_ids_are_ascii_digits(root, label):
    first = sorted(os.listdir(root / "train" / "four"))[0]
    good = (root / "train_list.txt").read_bytes()
    assert "expected 'relative/path label'" in _error(lambda: _listed(root, f"train/four/{first} {label}\n".encode()))
    assert "an id of digits" in _error(lambda: _listed(root, good, f"0 zero\n{label} one\n".encode()))


def test_paths_outside_the_root_are_refused_unless_allowed(root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside / "outside.png")
    first = sorted(os.listdir(root / "train" / "four"))[0]
    good = f"train/four/{first} 4\n"
    for line in (b"../elsewhere/outside.png 4\n", f"{outside / 'outside.png'} 4\n".encode(), b"/etc/passwd 0\n"):
        message = _error(lambda: _listed(root, good.encode() + line))
        assert "outside Data.root" in message and "Data.allow_outside_root" in message and "train_list.txt:2" in message
    train, _ = _listed(root, good.encode() + b"../elsewhere/outside.png 4\n", (root / "labels.txt").read_bytes(),
                       "Data.allow_outside_root=true")
    assert train.paths[-1].endswith("outside.png")
    os.symlink(outside / "outside.png", root / "train" / "four" / "linked.png")  # a link out of the folder
    assert "outside Data.root" in _error(lambda: _folder(root))
    os.remove(root / "train" / "four" / "linked.png")
    os.symlink(outside, root / "train" / "elsewhere")  # a class folder that is a link out
    assert "outside Data.root" in _error(lambda: _folder(root))
    assert "elsewhere" in _folder(root, "Data.allow_outside_root=true")[0].class_names


def test_macos_leftovers_are_skipped_and_named(root):
    four = root / "train" / "four"
    (four / "._photo.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (four / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "train" / "__MACOSX" / "four").mkdir(parents=True)
    (root / "train" / "__MACOSX" / "four" / "._x.png").write_bytes(b"\x00\x05\x16\x07")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    train, _ = _folder(root)
    assert "__MACOSX" not in train.class_names and ".ipynb_checkpoints" not in train.class_names
    assert {os.path.basename(p) for p in train.skipped_files} >= {"._photo.png", ".DS_Store", "__MACOSX",
                                                                   ".ipynb_checkpoints"}
    assert not any(os.path.basename(p).startswith(".") for p in train.paths)
    skipped = []
    assert list_images([str(four)], skipped) == sorted(str(p) for p in four.iterdir() if not p.name.startswith("."))
    assert sorted(os.path.basename(p) for p in skipped) == [".DS_Store", "._photo.png"]


def test_lists_from_windows_tools(root):
    """A UTF-8 byte-order mark and CRLF; a tab-separated label list with spaces in a name."""
    lines = (root / "train_list.txt").read_text().splitlines()
    bom = "\ufeff" + "\r\n".join(lines) + "\r\n"
    names = [line.split(" ", 1)[1] for line in (root / "labels.txt").read_text().splitlines()]
    labels = "\ufeff" + "".join(f"{i}\t{'chat é' if i == 1 else n}\r\n" for i, n in enumerate(names))
    train, _ = _listed(root, bom.encode("utf-8"), labels.encode("utf-8"))
    assert len(train) == len(lines) and train.class_names[1] == "chat é" and train.class_names[0] == names[0]


def test_a_phone_photo_is_read_upright(tmp_path):
    """EXIF orientation 6 (the camera held upright): 8 wide, 4 high as stored; 4 wide, 8 high as seen."""
    stored = np.zeros((4, 8, 3), np.uint8)
    stored[:, :4] = 255  # left half white as stored: the top half once turned 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=100)
    seen = np.asarray(read_image(str(tmp_path / "phone.jpg"), 3))
    assert seen.shape == (8, 4, 3) and seen[:4].mean() > 200 and seen[4:].mean() < 50


def _tall_float_tiff(path):
    """A TIFF of mode F, 11 x 4,194,313 pixels, in a few hundred bytes: an 11 x 2 image whose
    ImageLength tag is raised (Pillow decodes it as a 184 MB float image)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((2, 11), np.float32), mode="F").save(buffer, format="TIFF")
    raw = bytearray(buffer.getvalue())
    (ifd,) = struct.unpack_from("<I", raw, 4)
    (count,) = struct.unpack_from("<H", raw, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", raw, entry)
        if tag == 257:  # ImageLength
            struct.pack_into("<HHII" if kind == 4 else "<HHIH", raw, entry, tag, kind, 1, 4194313)
    path.write_bytes(bytes(raw))


def test_images_pillow_half_supports_are_bad_images(root, tmp_path):
    dds = b"DDS " + struct.pack("<7I", 124, 0x1007, 4, 4, 0, 0, 0) + bytes(44) + struct.pack("<2I", 32, 0) + bytes(40)
    (tmp_path / "bad_dds.png").write_bytes(dds + bytes(64))
    _tall_float_tiff(tmp_path / "tall.tif")
    for name, reason in (("bad_dds.png", "NotImplementedError"), ("tall.tif", "MiB decoded")):
        message = _error(lambda: read_image(str(tmp_path / name), 3))  # training, evaluation and infer alike
        assert str(tmp_path / name) in message and reason in message
    for name in ("tall.tif", "bad_dds.png"):  # their headers tell: refused before the run writes anything
        shutil.copy(tmp_path / name, root / "train" / "four" / f"zz_{name}")
    message = _error(lambda: _folder(root))
    assert "zz_bad_dds.png" in message and "NotImplementedError" in message and "1 more such file" in message
    assert "Data.skip_bad_images" in message
    train, _ = _folder(root, "Data.skip_bad_images=true")  # or replaced while training, and counted
    for name in ("tall.tif", "bad_dds.png"):
        bad = str(root / "train" / "four" / f"zz_{name}")
        sample = train[(train.paths.index(bad), 0)]
        assert len(sample) == 3 and sample[2] == [bad]


def test_gif_is_an_image_everywhere(root, tmp_path):
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "train" / "four" / "zz.gif")
    train, _ = _folder(root)
    assert str(root / "train" / "four" / "zz.gif") in train.paths
    assert str(root / "train" / "four" / "zz.gif") in list_images([str(root / "train" / "four")])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["[Train]", "[Eval]"])
def test_data_loader_workers_exit_when_the_trainer_is_killed(demo, tmp_path, moment):
    """Issue 35.10: after kill -9 of the main process no worker is left (checked within 15 s)."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    log = tmp_path / "run" / "train.log"
    proc = subprocess.Popen([sys.executable, f"{ROOT}/tools/train.py", "-c", "configs/vit_own_data.yaml",
                             "-o", "Global.device=cpu", "-o", f"Data.root={demo}", "-o", "Model.name=vit_nano_patch4_8",
                             "-o", "Model.image_size=8", "-o", "Global.max_steps=100000", "-o", "Global.log_every=1",
                             "-o", "Global.eval_every=5", "-o", "Data.num_workers=3",
                             "-o", f"Global.output_dir={tmp_path / 'run'}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not (log.exists() and moment in log.read_text()):
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert moment in log.read_text() and len(workers) >= 3, workers
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if _alive(w)]
