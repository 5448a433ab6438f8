"""The shipped configs as shipped: only paths, device, model size and step counts are changed.

``configs/vit_cifar100.yaml`` keeps its global batch 512 = 32 x 16 accumulation steps, the
KL rescaling, 4 DataLoader workers, SGD, the schedule and the checkpoint settings; it runs
on a genuine-format CIFAR-100 archive of 600 images, so every step crosses an epoch.
"""
import json

import pytest

from helpers import make_cifar100, run_tool, train_ok
from test_training import newest, same_weights

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

SIZE = ["-o", "Global.device=cpu", "-o", "Model.name=vit_tiny_patch16_224", "-o", "Model.image_size=32"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("cifar") / "cifar-100-python.tar.gz"
    make_cifar100(path, n_train=600, n_test=80)
    return path


def _recipe(archive, out, steps, *extra):
    return train_ok("-c", "configs/vit_cifar100.yaml", "-o", f"Data.root={archive}",
                    "-o", f"Global.output_dir={out}", *SIZE, "-o", f"Global.max_steps={steps}", *extra)


def test_recipe_as_shipped_trains_resumes_and_evaluates_with_any_worker_count(archive, tmp_path):
    res = _recipe(archive, tmp_path / "full", 3)  # shipped Data.num_workers: 4
    assert "global batch 512 = 32 x 16 accum x 1 card(s)" in res.stdout
    _recipe(archive, tmp_path / "w0", 2, "-o", "Data.num_workers=0")
    _recipe(archive, tmp_path / "w0", 3, "-o", "Data.num_workers=2")  # resume: auto, as shipped
    _recipe(archive, tmp_path / "w4", 2)
    _recipe(archive, tmp_path / "w4", 3)
    full = newest(tmp_path / "full")
    assert full[0] == 3 and full[2]["progress"]["position"] == 3 * 512
    for run in ("w0", "w4"):
        assert same_weights(full[1], newest(tmp_path / run)[1]), run
    res = run_tool("tools/eval.py", "-c", "configs/vit_cifar100.yaml", "-o", f"Data.root={archive}",
                   "-o", f"Global.output_dir={tmp_path / 'full'}", *SIZE)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["count"] == 80


def test_quickstart_as_shipped_with_workers(tmp_path):
    common = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=20"]
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'w0'}")
    train_ok(*common, "-o", f"Global.output_dir={tmp_path / 'w2'}", "-o", "Data.num_workers=2")
    assert same_weights(newest(tmp_path / "w0")[1], newest(tmp_path / "w2")[1])


def test_the_224_px_recipe_differs_only_where_the_issue_says_and_trains_as_shipped(archive, tmp_path):
    """configs/vit_cifar100_224.yaml (dropreg/R-Drop#25): 224 px, lr 8e-3, 20k steps."""
    from rdrop_paddle.config import load_config

    base, variant = (load_config(f"configs/{name}.yaml").to_dict() for name in ("vit_cifar100", "vit_cifar100_224"))
    changed = {f"{s}.{k}": (base[s][k], variant[s][k]) for s in base for k in base[s] if base[s][k] != variant[s][k]}
    assert changed == {"Global.output_dir": ("output/vit_cifar100", "output/vit_cifar100_224"),
                       "Global.max_steps": (10000, 20000), "Model.name": ("vit_base_patch16_384", "vit_base_patch16_224"),
                       "Model.image_size": (384, 224), "Optimizer.lr": (0.01, 0.008)}
    res = train_ok("-c", "configs/vit_cifar100_224.yaml", "-o", f"Data.root={archive}", "-o",
                   f"Global.output_dir={tmp_path / 'run'}", *SIZE, "-o", "Global.max_steps=2")
    assert "global batch 512 = 32 x 16 accum x 1 card(s)" in res.stdout
    assert newest(tmp_path / "run")[2]["progress"]["position"] == 2 * 512
