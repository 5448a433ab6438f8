"""R-Drop on the user's own images: folder and PaddleClas file-list sources on real image files."""
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import newest_weights, one_error_line, run_tool, train_ok
from rdrop_paddle.commands.demo_images import NAMES, write_demo_images
from rdrop_paddle.config import load_config
from rdrop_paddle.data import build_datasets
from rdrop_paddle.errors import UserInputError

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

NANO = ["-o", "Model.name=vit_nano_patch4_8", "-o", "Model.image_size=8", "-o", "Global.device=cpu",
        "-o", "Global.log_every=1", "-o", "Data.batch_size=16", "-o", "Data.eval_batch_size=64",
        "-o", "Optimizer.warmup_steps=2", "-o", "Data.max_per_card_batch=0"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "digits"
    write_demo_images(str(out), size=8)
    return out


def _cfg(tmp_path, *overrides):
    return load_config("configs/vit_own_data.yaml", [f"Global.output_dir={tmp_path / 'run'}", *overrides])


def test_folder_and_filelist_name_the_same_images_alike(demo, tmp_path):
    folder = build_datasets(_cfg(tmp_path, f"Data.root={demo}").Data, 8, 0, 1)
    listed = build_datasets(_cfg(tmp_path, "Data.name=filelist", f"Data.root={demo}",
                                 f"Data.train_list={demo / 'train_list.txt'}", f"Data.val_list={demo / 'val_list.txt'}",
                                 f"Data.label_list={demo / 'labels.txt'}").Data, 8, 0, 1)
    assert folder[0].class_names == sorted(NAMES) and listed[0].class_names == list(NAMES)
    assert folder[0].skipped_files == [str(demo / "train" / "README.txt")]
    assert (len(folder[0]), len(folder[1])) == (1438, 359)
    for a, b in zip(folder, listed):
        assert sorted(a.paths) == sorted(b.paths)
        by_path = dict(zip(b.paths, b.labels))
        assert all(a.class_names[la] == b.class_names[by_path[p]] for p, la in zip(a.paths, a.labels))


@pytest.mark.parametrize("kind,index", [("png_grey", 0), ("png_rgba", 3), ("png_16bit", 4)])
def test_image_modes_read_back_as_the_written_pixels(demo, tmp_path, kind, index):
    """Grey, RGBA and 16-bit PNG files give the pixels written (as L for a 1-channel model)."""
    from rdrop_paddle.data.decode import read_image
    from rdrop_paddle.data.digits import load_digits_split

    images, labels = load_digits_split(0.2, 0)["train"]
    path = demo / "train" / NAMES[labels[index]] / f"train_{index:04d}.png"
    grey = np.asarray(Image.fromarray(images[index]).resize((8, 8), Image.BILINEAR))
    got = np.asarray(read_image(str(path), 1))
    if kind == "png_rgba":  # tinted RGB made grey again: ITU-R 601 luma of the tinted pixels, not the source
        assert got.shape == (8, 8) and np.corrcoef(got.ravel(), grey.ravel())[0, 1] > 0.99
    else:
        np.testing.assert_array_equal(got, grey)
    rgb = np.asarray(read_image(str(path), 3))
    assert rgb.shape == (8, 8, 3)


def test_without_val_folder_the_split_is_stratified(demo, tmp_path):
    root = tmp_path / "only_train"
    shutil.copytree(demo / "train", root / "train")
    train, val = build_datasets(_cfg(tmp_path, f"Data.root={root}", "Data.val_fraction=0.25").Data, 8, 0, 1)
    for c in range(10):
        n_train, n_val = int((train.labels == c).sum()), int((val.labels == c).sum())
        assert n_val == round((n_train + n_val) * 0.25)
    assert not set(train.paths) & set(val.paths)


def test_reading_is_lazy(demo, tmp_path, monkeypatch):
    """Building the data sets lists paths and reads each file's header (checked before a run
    writes anything): no pixels are decoded until a sample is asked for."""
    from PIL import ImageFile

    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im.filename) or real_load(im))
    train, val = build_datasets(_cfg(tmp_path, f"Data.root={demo}").Data, 8, 0, 1)
    assert decoded == []
    assert all(isinstance(p, str) for p in train.paths) and not hasattr(train, "images")
    val[(3, 0)]
    assert set(decoded) == {val.paths[3]}  # (load() is called again by conversions: a no-op then)


def _bad_root(demo, tmp_path, case):
    root = tmp_path / case
    shutil.copytree(demo, root)
    lists = {k: root / f"{k}_list.txt" for k in ("train", "val")}
    if case == "line":
        lists["train"].write_text(lists["train"].read_text() + "just_a_path.png\n")
    elif case == "label":
        lists["val"].write_text("val/zero/val_0000.png 12\n")
    elif case == "missing":
        lists["train"].write_text("train/zero/nope.png 0\n")
    elif case == "duplicate":
        (root / "labels.txt").write_text("0 zero\n1 one\n1 uno\n")
    elif case == "only_in_val":
        os.makedirs(root / "val" / "eleven")
    elif case == "long_line":  # 8 MB without a newline: refused without reading it whole
        lists["train"].write_text("x" * (8 << 20))
    elif case == "no_classes":
        shutil.rmtree(root / "train")
        os.makedirs(root / "train")
    return root


@pytest.mark.parametrize("case,name,needle", [
    ("line", "filelist", "train_list.txt:1439: expected 'relative/path label', got 'just_a_path.png'"),
    ("label", "filelist", "val_list.txt:1: label 12 is not a class id [0, 10)"),
    ("missing", "filelist", "train_list.txt:1: image not found: "),
    ("duplicate", "filelist", "labels.txt:3: class id 1 is listed twice"),
    ("nolist", "filelist", "Data.val_list "),
    ("long_line", "filelist", "train_list.txt:1: line longer than 4096 characters"),
    ("only_in_val", "folder", "class 'eleven' is in val/ but not in train/"),
    ("no_classes", "folder", "train: no class folders"),
])
def test_bad_data_is_one_line_naming_file_and_line(demo, tmp_path, case, name, needle):
    root = _bad_root(demo, tmp_path, case)
    lists = [f"Data.train_list={root / 'train_list.txt'}", f"Data.label_list={root / 'labels.txt'}",
             f"Data.val_list={root / ('missing.txt' if case == 'nolist' else 'val_list.txt')}"]
    cfg = _cfg(tmp_path, f"Data.name={name}", f"Data.root={root}", *lists)
    with pytest.raises(UserInputError) as e:
        build_datasets(cfg.Data, 8, 0, 1)
    assert needle in str(e.value)


def test_tool_refuses_bad_data_and_a_class_count_mismatch_before_writing(demo, tmp_path):
    root = _bad_root(demo, tmp_path, "label")
    line = one_error_line(run_tool("tools/train.py", "-c", "configs/vit_own_data.yaml", *NANO, "-o", "Data.name=filelist",
                                   "-o", f"Data.root={root}", "-o", f"Data.train_list={root / 'train_list.txt'}",
                                   "-o", f"Data.val_list={root / 'val_list.txt'}", "-o", f"Global.output_dir={tmp_path / 'a'}"))
    assert "val_list.txt:1: label 12" in line
    line = one_error_line(run_tool("tools/train.py", "-c", "configs/vit_own_data.yaml", *NANO, "-o", f"Data.root={demo}",
                                   "-o", "Model.num_classes=7", "-o", f"Global.output_dir={tmp_path / 'b'}"))
    assert "Model.num_classes is 7 but the folder data set has 10 classes" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _corrupt(demo, tmp_path, header: bool = False):
    """A copy of the demo folder with one training image damaged: its header (unreadable), or
    its pixels (a PNG whose header reads but whose data is cut in half)."""
    root = tmp_path / ("bad_header" if header else "corrupt")
    shutil.copytree(demo, root)
    bad = sorted((root / "train" / "four").iterdir())[1]
    if header:
        bad.write_bytes(b"not an image at all")
    else:
        with Image.open(bad) as im:
            buffer = io.BytesIO()
            im.save(buffer, format="PNG")
        bad.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    return root, bad


def test_a_corrupt_image_stops_the_run_naming_it_or_is_replaced_alike(demo, tmp_path):
    root, bad = _corrupt(demo, tmp_path)
    common = ["-c", "configs/vit_own_data.yaml", *NANO, "-o", "Global.max_steps=90",
              "-o", "Global.eval_every=1000", "-o", "Data.auto_augment=", "-o", "Data.mixup=0", "-o", "Data.cutmix=0"]
    header_root, header_bad = _corrupt(demo, tmp_path, header=True)  # found before anything is written
    line = one_error_line(run_tool("tools/train.py", *common, "-o", f"Data.root={header_root}",
                                   "-o", f"Global.output_dir={tmp_path / 'early'}"), 2)
    assert str(header_bad) in line and "Data.skip_bad_images" in line and not (tmp_path / "early").exists()
    common += ["-o", f"Data.root={root}"]
    line = one_error_line(run_tool("tools/train.py", *common, "-o", f"Global.output_dir={tmp_path / 'stop'}"), 1)
    assert str(bad) in line and "not an image this tool can read" in line
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"skip{workers}"
        res = train_ok(*common, "-o", "Data.skip_bad_images=true", "-o", f"Data.num_workers={workers}",
                       "-o", f"Global.output_dir={out}")
        log = (out / "train.log").read_text()
        assert "unreadable image(s) replaced so far (Data.skip_bad_images)" in log and str(bad) in log, res.stdout
        runs[workers] = newest_weights(out)
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[2][key], err_msg=key)


EVERYTHING = ["-o", "Data.hflip=0.5", "-o", "Data.auto_augment=rand-m9-mstd0.5-inc1", "-o", "Data.random_erasing=0.5",
              "-o", "Data.mixup=0.8", "-o", "Data.cutmix=1.0", "-o", "Loss.label_smoothing=0.1",
              "-o", "Model.ema_decay=0.9", "-o", "Optimizer.layer_decay=0.65", "-o", "Global.max_steps=8",
              "-o", "Global.eval_every=4", "-o", "Global.save_every=4", "-o", "Data.num_workers=2"]


def test_resume_is_bit_exact_with_every_finetuning_option_on(demo, tmp_path):
    common = ["-c", "configs/vit_own_data.yaml", *NANO, *EVERYTHING, "-o", f"Data.root={demo}"]
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'straight'}")
    os.makedirs(tmp_path / "split" / "checkpoints")  # a run stopped after step 4: its checkpoint alone
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step_0000004", tmp_path / "split" / "checkpoints" / "step_0000004")
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'split'}", "-o", "Global.resume=auto")
    for ema in (False, True):
        a, b = newest_weights(tmp_path / "straight", ema), newest_weights(tmp_path / "split", ema)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key} (ema={ema})")
    log = (tmp_path / "straight" / "train.log").read_text()
    assert "layer_decay 0.65" in log and "EMA decay 0.9" in log and "ema_top1: " in log


def test_two_processes_match_one_with_every_finetuning_option_on(demo, tmp_path):
    """Data parallel = one process for the same global batch: the same crops, flips, RandAugment,
    erasing and Mixup/CutMix per sample and micro-batch (dropout off, SGD)."""
    common = ["-c", "configs/vit_own_data.yaml", *NANO, *EVERYTHING, "-o", f"Data.root={demo}",
              "-o", "Model.dropout=0.0", "-o", "Model.drop_path=0.0", "-o", "Optimizer.name=sgd",
              "-o", "Optimizer.lr=0.05", "-o", "Optimizer.weight_decay=0", "-o", "Data.max_per_card_batch=8"]
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'one'}")
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'two'}", launch=2, log_dir=tmp_path / "launch")
    for ema in (False, True):
        a, b = newest_weights(tmp_path / "one", ema), newest_weights(tmp_path / "two", ema)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=f"{key} (ema={ema})")


@pytest.mark.extended  # docs/own_images.md as written, 4 minutes: CI's second step
def test_readme_walkthrough_runs_and_names_the_classes(tmp_path):
    """docs/own_images.md's walk-through block, as written, in a venv with README's install only:
    train -> eval --per-class -> export -> infer."""
    import json
    import re
    import subprocess

    from helpers import ROOT, readme_install_env

    readme = open(os.path.join(ROOT, "docs", "own_images.md"), encoding="utf-8").read()
    block = re.search(r"```bash\n(# own-images walk-through\n.*?)```", readme, flags=re.S).group(1)
    for name in ("tools", "configs"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    res = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env=readme_install_env())  # a fresh venv with README's install only
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    run = tmp_path / "output" / "own_images"
    metrics = json.loads((run / "metrics.json").read_text())
    evals = [line for line in (run / "train.log").read_text().splitlines() if "[Eval]" in line]
    scores = [(float(e.split("top1: ")[1].split(",")[0]), float(e.split("ema_top1: ")[1].split(",")[0])) for e in evals]
    raw, ema = max(scores, key=max)  # the best evaluation: the better of its raw and EMA weights
    assert metrics["class_names"] == sorted(NAMES)
    assert metrics["checkpoint"].endswith("/best_ema.pdparams" if ema >= raw else "/best.pdparams")
    assert metrics["top1"] == pytest.approx(max(raw, ema), abs=0.01)
    quoted = float(re.search(r"prints `top1: ([0-9.]+), top5: [0-9.]+`", readme).group(1))
    assert abs(metrics["top1"] - quoted) < 3.0  # the page's figure (its last digits move between CPUs)
    assert [row["name"] for row in metrics["per_class"]] == sorted(NAMES)
    assert "| 5 | seven | " in res.stdout and "top1: " in res.stdout
    assert json.loads((run / "inference" / "infer_cfg.json").read_text())["class_names"] == sorted(NAMES)
    predicted = [line.split("|")[2].split()[0] for line in res.stdout.splitlines() if line.startswith("| val_")]
    assert len(predicted) == len(os.listdir(tmp_path / "data" / "digits_images" / "val" / "seven"))
    assert set(predicted) <= set(NAMES) and predicted.count("seven") > len(predicted) / 2
    manifest = json.loads(next((run / "checkpoints").glob("step_*/manifest.json")).read_text())
    assert manifest["class_names"] == sorted(NAMES)


def test_export_takes_the_run_class_names_without_the_data(demo, tmp_path):
    import json

    data = tmp_path / "data"
    shutil.copytree(demo, data)
    common = ["-c", "configs/vit_own_data.yaml", *NANO, "-o", f"Data.root={data}", "-o", f"Global.output_dir={tmp_path / 'run'}"]
    train_ok(*common, "-o", "Global.max_steps=2", "-o", "Model.ema_decay=0")
    shutil.rmtree(data)  # exported on another machine, say
    res = run_tool("tools/export_model.py", *common, "--out", tmp_path / "inference")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((tmp_path / "inference" / "infer_cfg.json").read_text())["class_names"] == sorted(NAMES)


def test_the_template_as_shipped_trains_on_cpu(demo, tmp_path):
    """configs/vit_own_data.yaml with its own batch plan (128 = 64 x 2 accumulation), 8 workers and
    every fine-tuning option; only the device and, for CPU, the model are changed."""
    res = train_ok("-c", "configs/vit_own_data.yaml", "-o", "Global.device=cpu", "-o", f"Data.root={demo}",
                   "-o", "Model.name=vit_nano_patch4_8", "-o", "Model.image_size=8", "-o", "Global.max_steps=3",
                   "-o", f"Global.output_dir={tmp_path / 'run'}")
    assert "global batch 128 = 64 x 2 accum x 1 card(s)" in res.stdout
    assert all(note in res.stdout for note in ("layer_decay 0.65", "EMA decay 0.9998", "mixup 0.8, cutmix 1.0",
                                               "label_smoothing 0.1", "1 hidden or non-image entry skipped ("))
    assert "ema_top1: " in (tmp_path / "run" / "train.log").read_text()
