"""The low-data study end to end at a tiny budget, and its pairing."""
import json

import numpy as np
import pytest

from helpers import run_tool
from rdrop_paddle.commands.study import paired

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only


def test_study_runs_and_pairs_its_arms(tmp_path):
    res = run_tool("tools/study.py", "-c", "configs/quickstart.yaml", "--fractions", "0.1,0.5", "--seeds", 2,
                   "--alphas", "0.1,0.3", "--out", tmp_path / "study", "--image", tmp_path / "study.png",
                   "-o", "Global.max_steps=6", "-o", "Global.log_every=3", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((tmp_path / "study" / "study.json").read_text())
    assert data["alpha"] in (0.1, 0.3) and len(data["grid"]) == 4  # 2 alphas x 2 seeds
    runs = data["runs"]
    assert len(runs) == 2 * 2 * 2
    for f in (0.1, 0.5):
        for seed in (42, 43):
            base, rd = ([r for r in runs if r["fraction"] == f and r["seed"] == seed and (r["alpha"] > 0) == arm]
                        for arm in (False, True))
            assert len(base) == len(rd) == 1
            assert base[0]["subset"] == rd[0]["subset"] and base[0]["init"] == rd[0]["init"]
            assert base[0]["train_images"] == round(1438 * f)
            for key in ("kl", "gap", "top1_dropout", "top1_eval"):
                assert np.isfinite(base[0][key]) and np.isfinite(rd[0][key])
        subsets = {r["subset"] for r in runs if r["fraction"] == f}
        assert len(subsets) == 2  # another seed, another subset
    table = [l for l in res.stdout.splitlines() if l.startswith("| ")]
    assert len(table) == 4 and "Δ top-1 [95% CI]" in table[0]
    assert (tmp_path / "study.png").read_bytes()[:4] == b"\x89PNG"


def test_paired_interval_by_hand():
    mean, lo, hi = paired([1.0, 2.0, 3.0, 6.0])
    # mean 3, sd sqrt(14/3), t(0.975, 3) = 3.182446305
    half = 3.182446305 * np.sqrt(14 / 3) / 2
    assert mean == 3.0 and lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)
