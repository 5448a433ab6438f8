"""The alignment suite: every step of tools/align.py must pass against PyTorch.

forward and loss run at ViT-B/16 dimensions (224 px); backward uses ViT-B/16 width and
depth at 64 px with batch 4 to keep CI short; train runs 60 steps of the quickstart ViT.
"""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("reprod_log")

from helpers import run_tool  # noqa: E402
from rdrop_paddle.alignment.report import record  # noqa: E402
from rdrop_paddle.commands.align import steps  # noqa: E402
from rdrop_paddle.commands.arguments import ALIGN_STEPS  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only


@pytest.mark.parametrize("name", ALIGN_STEPS)
def test_step_passes_and_writes_reprod_log_files(tmp_path, name):
    result = steps(str(tmp_path / "curves.png"))[name](str(tmp_path))
    assert result.passed, f"{name}: max diff {result.max_diff} > {result.threshold} ({result.detail})"
    for suffix in ("paddle.npy", "torch.npy", "diff.txt"):
        assert (tmp_path / f"{name}_{suffix}").is_file()
    assert (tmp_path / f"{name}_diff.txt").read_text().strip().endswith("diff check passed")
    paddle_side = np.load(tmp_path / f"{name}_paddle.npy", allow_pickle=True).item()
    torch_side = np.load(tmp_path / f"{name}_torch.npy", allow_pickle=True).item()
    assert paddle_side.keys() == torch_side.keys() and paddle_side
    if name == "train":
        assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_real_mismatch_is_reported(tmp_path):
    """The diff machinery itself: one changed value must fail its threshold."""
    diff = record(str(tmp_path), "probe", {"x": np.ones(3)}, {"x": np.array([1, 1, 1.001])}, 1e-6)
    assert diff == pytest.approx(1e-3)
    assert (tmp_path / "probe_diff.txt").read_text().strip().endswith("diff check failed")


def test_align_tool_prints_one_table(tmp_path):
    res = run_tool("tools/align.py", "--out", tmp_path, "--steps", "loss,metric")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["step", "max", "diff", "threshold"]
    assert [l.split()[0] for l in lines[1:]] == ["loss", "metric"]
    assert all(" pass " in l for l in lines[1:])
    bad = run_tool("tools/align.py", "--out", tmp_path, "--steps", "lossy")
    assert bad.returncode == 2 and "unknown step(s) lossy" in bad.stderr
