"""The benchmark programs of ``benchmarks/`` on a tiny model: they run to the end on a clean
stderr, and an optional package that is missing marks its rows instead of stopping the run."""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # minutes of benchmarks: CI's second step


def test_infer_backends_marks_a_missing_optional_package_and_keeps_stderr_clean(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "tests", "no_ml_dtypes"), ROOT])}
    env.pop("OMP_NUM_THREADS", None)
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "infer_backends.py"), "--models",
                          "vit_tiny_patch16", "--sizes", "224", "--batches", "1", "--warmup", "0", "--repeats", "1",
                          "--classes", "3", "--backends", "torch,paddle,ort,ort_int8,openvino,auto", "--quiet-waits", "0",
                          "--json", str(tmp_path / "rows.json")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr == ""
    report = json.loads((tmp_path / "rows.json").read_text())
    rows = {row["backend"]: row for row in report["rows"]}
    assert rows["ONNX Runtime int8, static QDQ"]["status"] == "not installed (pip install ml_dtypes)"
    assert rows["ONNX Runtime (--backend onnxruntime)"]["max_abs_diff"] < 1e-4  # the other rows ran
    assert rows["Paddle Inference (--backend paddle)"]["max_abs_diff"] < 1e-4
    auto = next(row for name, row in rows.items() if name.startswith("tools/infer.py's default (--backend auto): "))
    assert auto["chose"] in ("openvino", "onnxruntime") and auto["max_abs_diff"] < 1e-4  # ONNX Runtime is installed
    assert rows["PyTorch eager (transformers)"]["speedup"] == 1.0
    openvino = rows["OpenVINO fp32 (--backend openvino)"]
    assert openvino.get("status") == "not installed (pip install openvino)" or openvino["max_abs_diff"] < 1e-4
    assert report["sgemm_gflops"]["numpy"] > 0 and report["sgemm_gflops"]["torch"] > 0
    assert "theoretical fp32 peak" in res.stdout and report["sgemm_load"] >= 0
