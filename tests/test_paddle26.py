"""The fast subset on Paddle 2.6.2 — what ``pip install paddlepaddle-gpu`` gives from PyPI —
in a second virtual environment installed with docs/install.md's command for it (no torch there):
losses against the real paddlenlp file, models, I/O, optimizer, checkpoints, a training run
with exact resume, the shipped recipe, export and Paddle Inference (not ONNX), exact
recomputation, ``paddle.distributed.launch`` (2 processes equal to 1, and two nodes that
train, resume and evaluate as one run), and PaddleClas's own predictor on exports (through its
ONNX Runtime path: its Paddle Inference path fails on 2.6, docs/inference.md)."""
import os
import subprocess

import pytest

from helpers import ROOT, cached_venv

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # builds a venv: CI's second step (-m extended)

SUBSET = ["tests/test_io.py", "tests/test_models.py", "tests/test_paddlenlp.py", "tests/test_rdrop_any_model.py",
          "tests/test_train_step.py", "tests/test_optim.py", "tests/test_checkpoint.py", "tests/test_deploy.py",
          "tests/test_training.py::test_resume_is_exact_when_steps_straddle_epochs_and_workers_change",
          "tests/test_recipe.py::test_recipe_as_shipped_trains_resumes_and_evaluates_with_any_worker_count",
          "tests/test_recompute.py::test_recompute_gives_identical_weights_with_dropout_on",
          "tests/test_tools.py::test_two_processes_match_one_without_dropout",
          "tests/test_multinode.py::test_two_nodes_without_shared_storage_resume_as_one_run",
          "tests/test_finetune.py::test_ema_follows_its_formula_over_steps",
          "tests/test_finetune.py::test_layer_decay_gives_each_group_lr_times_decay_power",
          "tests/test_own_images.py::test_resume_is_bit_exact_with_every_finetuning_option_on",
          "tests/test_paddleclas_predictor.py"]
# paddle2onnx 2.x converts Paddle 3 programs only (README, Inference)
DESELECT = ["tests/test_deploy.py::test_onnx_runtime_predicts_as_paddle_inference",
            "tests/test_deploy.py::test_onnx_without_its_packages_is_one_line_and_writes_nothing"]
INSTALL = "pip install paddlepaddle==2.6.2 && pip install -r requirements.txt"  # docs/install.md
# PaddleClas's predictor, and its ONNX Runtime path (paddle2onnx 1.x converts Paddle 2.6 programs; docs/inference.md)
PADDLECLAS = 'pip install --no-deps paddleclas==2.6.0 && pip install opencv-python-headless six "paddle2onnx<2" onnxruntime'


def _venv() -> str:
    return cached_venv("paddle-2.6.2-venv", f"{INSTALL} pytest && {PADDLECLAS}",  # reused across runs (CONTRIBUTING.md)
                       "import cv2, onnxruntime, paddle, paddle2onnx; print('ok' if paddle.__version__ == '2.6.2' else '')")


def test_fast_subset_on_paddle_2_6():
    with open(os.path.join(ROOT, "docs", "install.md"), encoding="utf-8") as fh:
        assert INSTALL in fh.read()  # what is tested here is what the install page tells users to run
    python = _venv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "OMP_", "MKL_", "FLAGS_"))}
    env["PYTHONPATH"] = ROOT  # this checkout, in the tools' processes too, whatever that venv once had installed
    res = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET,
                          *(f"--deselect={test}" for test in DESELECT)], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=1500)
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    assert res.returncode == 0 and " passed" in summary and "skipped" not in summary, \
        res.stdout[-4000:] + res.stderr[-2000:]
