"""The TIPC chain as a Paddle reproduction reviewer runs it, with the published tools unmodified:

* the reproduction guide's runner — PaddlePaddle/models,
  ``tutorials/mobilenetv3_prod/Step6/test_tipc/test_train_inference_python.sh`` and
  ``common_func.sh`` — copied into ``test_tipc/`` of a copy of this checkout, on each shipped
  CPU description file in ``lite_train_lite_infer``: every step "Run successfully";
* PaddleClas's runner (its ``test_tipc/`` files of the same names) on the description file in
  PaddleClas's layout;
* Paddle's benchmark parser — PaddlePaddle/benchmark ``tools/scripts/analysis.py`` — called as
  PaddleClas's ``test_tipc/benchmark_train.sh`` calls it, on a training log of this package.

None of these programs is on a package registry, and this repository does not carry copies of
them: the tests read them from a checkout or a git clone of each repository, named by
``PADDLE_MODELS_REPO``, ``PADDLECLAS_REPO`` and ``PADDLE_BENCHMARK_REPO`` (``.ci/run`` sets them
where a clone is at hand), and are skipped, saying so, without one.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

GUIDE = ("PADDLE_MODELS_REPO", "tutorials/mobilenetv3_prod/Step6/test_tipc")
PADDLECLAS = ("PADDLECLAS_REPO", "test_tipc")
PARSER = "tools/scripts/analysis.py"
FIXTURE_LOG = os.path.join(ROOT, "tests", "fixtures", "tipc_vit_nano_train.log")
CPU_FILES = ["vit_nano_patch4_8", "vit_base_patch16_384"]


def published(variable: str, path: str, refs=("HEAD",)) -> str:
    """The text of ``path`` in the repository named by environment ``variable`` (a checkout, or
    a git directory read at the first of ``refs`` holding it); the test is skipped without it."""
    repo = os.environ.get(variable, "")
    if not repo or not os.path.isdir(repo):
        pytest.skip(f"{variable} names no checkout or clone of the published tool ({path})")
    if os.path.isfile(os.path.join(repo, path)):
        with open(os.path.join(repo, path), encoding="utf-8") as fh:
            return fh.read()
    for ref in refs:
        res = subprocess.run(["git", "--git-dir", repo, "show", f"{ref}:{path}"], capture_output=True, text=True)
        if res.returncode == 0:
            return res.stdout
    pytest.skip(f"{variable}={repo} holds no {path}")


def chain(workspace, config: str, runner=GUIDE, mode: str = "lite_train_lite_infer", text: str = "") -> list[str]:
    """Run prepare.sh and a published runner in a copy of the checkout (``config`` replaced by
    ``text`` if given); the lines it recorded."""
    for name in ("test_train_inference_python.sh", "common_func.sh"):
        (workspace / name).write_text(published(runner[0], f"{runner[1]}/{name}"))
    for folder in ("tools", "configs", "test_tipc", "deploy"):
        shutil.copytree(os.path.join(ROOT, folder), workspace / folder,
                        ignore=shutil.ignore_patterns("output", "data", "__pycache__"))
    for name in ("test_train_inference_python.sh", "common_func.sh"):
        os.replace(workspace / name, workspace / "test_tipc" / name)
    if text:
        (workspace / config).write_text(text)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    for script in ("prepare.sh", "test_train_inference_python.sh"):
        res = subprocess.run(["bash", f"test_tipc/{script}", config, mode], cwd=workspace, env=env,
                             capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    model = next(line.split(":", 1)[1] for line in (workspace / config).read_text().splitlines()
                 if line.startswith("model_name:"))
    log = workspace / "test_tipc" / "output" / model / mode / "results_python.log"
    return [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def nano_chain(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("tipc_nano")
    return workspace, chain(workspace, "test_tipc/configs/vit_nano_patch4_8/train_infer_python.txt")


def _all_successful(lines: list[str], inferences: int = 2) -> None:
    assert len(lines) == 3 + inferences, lines  # train, eval, export, each inference
    assert all(line.startswith("Run successfully with command") for line in lines), lines
    for step, line in zip(("tools/train.py", "tools/eval.py", "tools/export_model.py")
                          + ("tools/infer.py",) * inferences, lines):
        assert f"python {step} " in line or f"python ../{step} " in line, line


def test_the_guides_runner_runs_the_quickstart_chain(nano_chain):
    workspace, lines = nano_chain
    _all_successful(lines)
    assert "--benchmark=True" in lines[3] and "--batch-size=4" in lines[4]
    out = workspace / "test_tipc" / "output" / "vit_nano_patch4_8" / "lite_train_lite_infer"
    printed = (out / "python_infer_cpu_batchsize_4.log").read_text()
    assert "benchmark: preprocess:" in printed and "| digit_0_label0.png | 0 (" in printed  # the demo digits


@pytest.mark.extended  # 4 minutes of ViT-B/16 at 384 px: CI's second step
def test_the_guides_runner_runs_the_recipe_chain(tmp_path):
    """ViT-B/16 at 384 px, the recipe as shipped (4 workers, 16 accumulation steps), one step."""
    lines = chain(tmp_path, "test_tipc/configs/vit_base_patch16_384/train_infer_python.txt")
    _all_successful(lines)
    run = tmp_path / "test_tipc" / "output" / "vit_base_patch16_384" / "lite_train_lite_infer"
    export = run / "norm_train_gpus_-1_autocast_False_nodes_1.log"
    assert {"inference.json", "inference.pdiparams", "inference.yml", "label_list.txt"} <= set(os.listdir(export))


def test_a_shifted_description_file_fails_in_one_line_naming_the_flag(tmp_path):
    """The --model-dir line missing: every later field moves up one, and inference is called
    without --model-dir: it fails with one line naming it, no traceback."""
    config = "test_tipc/configs/vit_nano_patch4_8/train_infer_python.txt"
    text = open(os.path.join(ROOT, config)).read().splitlines()
    assert text.pop(29).startswith("--model-dir:")
    lines = chain(tmp_path, config, text="\n".join(text) + "\n")
    assert [line.split(" with command")[0] for line in lines] == ["Run successfully"] * 3 + ["Run failed"] * 2
    for batch in (1, 4):
        log = (tmp_path / "test_tipc" / "output" / "vit_nano_patch4_8" / "lite_train_lite_infer" /
               f"python_infer_cpu_batchsize_{batch}.log").read_text()
        assert log == "error: the following arguments are required: --model-dir (see infer.py --help)\n", log


def test_paddleclas_runner_runs_the_quickstart_chain(tmp_path):
    """Its conventions: ``-o AMP.use_amp=False`` and ``-o Global.print_mem_info=True`` appended,
    ``output_dir/<model_name>/train.log`` and ``best.pdparams`` (``Global.model_subdir``), and
    inference started from ``deploy/``."""
    lines = chain(tmp_path, "test_tipc/configs/vit_nano_patch4_8/train_infer_python_paddleclas.txt", PADDLECLAS)
    _all_successful(lines, inferences=1)
    assert "-o AMP.use_amp=False" in lines[0] and "-o Global.print_mem_info=True" in lines[0]
    run = tmp_path / "test_tipc" / "output" / "vit_nano_patch4_8" / "lite_train_lite_infer"
    train_log = (run / "norm_train_gpus_-1_autocast_null_nodes_1.log").read_text()  # the runner's cat of train.log
    assert "[Train][step 2/2]" in train_log and "max_rss: " in train_log


def _parse(tmp_path, log, skip_steps: int, batch: int = 64) -> dict:
    """PaddleClas's benchmark_train.sh call of Paddle's parser, on ``log``."""
    (tmp_path / "analysis.py").write_text(published("PADDLE_BENCHMARK_REPO", PARSER, refs=("HEAD", "develop")))
    res = subprocess.run([sys.executable, str(tmp_path / "analysis.py"), "--filename", str(log),
                          "--speed_log_file", str(tmp_path / "speed.json"), "--model_name", "vit_nano_bs64_fp32_DP",
                          "--base_batch_size", str(batch), "--run_mode", "DP", "--fp_item", "fp32",
                          "--keyword", "ips:", "--skip_steps", str(skip_steps), "--device_num", "N1C1",
                          "--speed_unit", "samples/s", "--convergence_key", "loss:"],
                         capture_output=True, text=True, env={**os.environ, "job_fail_flag": "0"})
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads((tmp_path / "speed.json").read_text())


def _by_hand(log_text: str, skip_steps: int) -> tuple[float, str]:
    """The parser's figures derived from the log: the ips mean after ``skip_steps`` with the
    5 % (at least 5) smallest and largest left out; the last training line's loss."""
    train = [line for line in log_text.splitlines() if "[Train]" in line]
    ips = sorted(float(line.split("ips: ")[1].split()[0]) for line in train[skip_steps:])
    cut = max(int(len(ips) * 0.05), 5)
    kept = ips[cut:-cut]
    return sum(kept) / len(kept), train[-1].split("loss: ")[1].split(",")[0]


@pytest.mark.parametrize("source", ["fixture", "fresh"])
def test_paddles_benchmark_parser_reads_ips_and_the_training_loss(nano_chain, tmp_path, source):
    """The last ``loss:`` it reports is the last training line's, not an ``[Eval]`` line's
    (``val_loss:``); the lite chain logs every step, enough for ``--skip_steps 5``."""
    if source == "fixture":
        log = FIXTURE_LOG
    else:
        workspace, _ = nano_chain
        log = (workspace / "test_tipc" / "output" / "vit_nano_patch4_8" / "lite_train_lite_infer" /
               "norm_train_gpus_-1_autocast_False_nodes_1.log" / "train.log")
    text = open(log, encoding="utf-8").read()
    assert "[Eval]" in text.splitlines()[-2] or "[Eval]" in text.splitlines()[-3]  # an eval line after the last step
    speed = _parse(tmp_path, log, skip_steps=5)
    ips, loss = _by_hand(text, 5)
    assert speed["ips"] == pytest.approx(ips, abs=1e-3) and speed["convergence_value"] == loss
