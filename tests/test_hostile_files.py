"""A hostile pickle at every entry point of the tools runs nothing and is one error line."""
import hashlib
import json
import pickle

import pytest

from helpers import Hostile, one_error_line, run_tool, train_ok
from rdrop_paddle.compat import supported

QUICK = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=2"]


def _evil(path, marker):
    path.write_bytes(pickle.dumps({"head.weight": Hostile(marker)}, protocol=4))
    return path


@pytest.mark.parametrize("tool", ["tools/train.py", "tools/eval.py", "tools/export_model.py"])
def test_hostile_pretrained_weights(tmp_path, tool):
    marker = tmp_path / "pwned"
    evil = _evil(tmp_path / "evil.pdparams", marker)
    extra = ["--out", tmp_path / "exp"] if "export" in tool else []
    res = run_tool(tool, *QUICK, "-o", f"Global.output_dir={tmp_path / 'run'}", "-o", f"Model.pretrained={evil}",
                   *extra)
    assert "refusing to load it: the pickle calls io.open" in one_error_line(res)
    assert not marker.exists()


@pytest.mark.slow
def test_hostile_checkpoint_with_a_matching_manifest(tmp_path):
    out = tmp_path / "run"
    train_ok(*QUICK, "-o", f"Global.output_dir={out}")
    unit = out / "checkpoints" / "step_0000002"
    marker = tmp_path / "pwned"
    state = unit / "train.pdopt"
    state.write_bytes(pickle.dumps({"step": Hostile(marker)}, protocol=4))
    manifest = json.loads((unit / "manifest.json").read_text())
    raw = state.read_bytes()
    manifest["files"]["train.pdopt"] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    (unit / "manifest.json").write_text(json.dumps(manifest))
    res = run_tool("tools/train.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={out}",
                   "-o", "Global.max_steps=4")
    # a hostile file is damage: set aside with a notice naming it, and nothing older is there
    assert "no complete checkpoint" in one_error_line(res) and "(1 damaged, set aside)" in res.stderr
    assert "train.pdopt: refusing to load it: the pickle calls io.open" in res.stdout
    assert not marker.exists()


@pytest.mark.parametrize("version,ok", [("2.6.2", True), ("3.3.1", True), ("3.0.0", True), ("0.0.0", True),
                                        ("2.5.2", False), ("2.7.0", False), ("unknown", False)])
def test_supported_paddle_versions(version, ok):
    assert supported(version) is ok
