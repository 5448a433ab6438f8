"""The TIPC chain (test_tipc/) in lite_train_lite_infer mode, as a Paddle reproduction
reviewer runs it: prepare.sh, then test_train_inference_python.sh per model; no step fails."""
import json
import os
import subprocess

import numpy as np
import pytest

from helpers import ROOT

MODELS = ["vit_nano_patch4_8", "vit_base_patch16_384"]


def _chain(config, out, mode="lite_train_lite_infer"):
    env = {**os.environ, "TIPC_OUTPUT_DIR": str(out)}
    prep = subprocess.run(["bash", "test_tipc/prepare.sh", config, mode], cwd=ROOT, capture_output=True, text=True)
    assert prep.returncode == 0, prep.stderr[-2000:]
    return subprocess.run(["bash", "test_tipc/test_train_inference_python.sh", config, mode], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("model", MODELS)
def test_the_lite_chain_runs_every_step_successfully(tmp_path, model):
    res = _chain(f"test_tipc/configs/{model}/train_infer_python.txt", tmp_path)
    log = (tmp_path / "results_python.log").read_text()
    assert res.returncode == 0 and "Run failed" not in log, log[-3000:]
    steps = [line for line in log.splitlines() if line.startswith("Run successfully with command - ")]
    assert len(steps) == 3 + 8 + 3  # train, eval, export; 2 x 2 x 2 inference runs; 2-process train, eval, export
    run = tmp_path / model / "norm_train_cpu_1proc"
    logits = {}
    for mkldnn in ("True", "False"):
        out = json.loads((run / f"infer_cpu_mkldnn_{mkldnn}_threads_2_batchsize_4.json").read_text())
        assert out["benchmark"]["batch_size"] == 4 and out["benchmark"]["inference_ms"] > 0
        logits[mkldnn] = np.array([p["logits"] for p in out["predictions"]])
        printed = (run / f"infer_cpu_mkldnn_{mkldnn}_threads_2_batchsize_4.out").read_text()
        ips = [float(line.split("ips:")[1].split()[0]) for line in printed.splitlines() if "ips:" in line]
        assert ips == [pytest.approx(1000 / out["benchmark"]["total_ms"], abs=0.051)]
    np.testing.assert_allclose(logits["True"], logits["False"], atol=1e-4)  # oneDNN changes nothing visible


def test_a_failing_step_is_reported_as_failed(tmp_path):
    text = open(os.path.join(ROOT, "test_tipc/configs/vit_nano_patch4_8/train_infer_python.txt")).read()
    text = (text.replace("gpu_list:-1|0,1", "gpu_list:-1").replace("--enable-mkldnn:True|False", "--enable-mkldnn:False")
            .replace("--cpu-threads:1|2", "--cpu-threads:1").replace("--batch-size:1|4", "--batch-size:1")
            .replace("eval:tools/eval.py -c configs/quickstart.yaml", "eval:tools/eval.py -c configs/missing.yaml"))
    (tmp_path / "cfg.txt").write_text(text)
    res = _chain(str(tmp_path / "cfg.txt"), tmp_path / "out")
    log = (tmp_path / "out" / "results_python.log").read_text().splitlines()
    assert res.returncode == 1 and len(log) == 4, log
    assert log[1].startswith("Run failed with command - python tools/eval.py -c configs/missing.yaml")
    assert all(line.startswith("Run successfully") for line in log[:1] + log[2:])
