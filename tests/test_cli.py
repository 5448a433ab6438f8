"""The tools as commands: ``--help`` without Paddle, a help text for every option, and no
start-up noise from Paddle that the package itself provokes."""
import argparse
import os
import subprocess
import sys

import pytest

from helpers import ROOT, run_tool
from rdrop_paddle.cli import COMMANDS
from rdrop_paddle.commands import arguments

TOOLS = ["train", "eval", "export_model", "infer", "convert_weights", "align", "compare", "study", "plot_logs"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_prints_its_usage_and_imports_no_paddle(tool):
    res = subprocess.run([sys.executable, "-X", "importtime", os.path.join(ROOT, "tools", f"{tool}.py"), "--help"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("usage: "), res.stderr[-2000:]
    timings = [line for line in res.stderr.splitlines() if line.startswith("import time:")]
    modules = {line.rsplit("|", 1)[-1].strip() for line in timings}
    assert modules and not {m for m in modules if m == "paddle" or m.startswith("paddle.")}
    assert len(timings) == len(res.stderr.splitlines())  # nothing else on stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_a_help_text(command):
    parser = getattr(arguments, COMMANDS[command][1])()
    missing = [a.option_strings or a.dest for a in parser._actions if not a.help or a.help == argparse.SUPPRESS]
    assert not missing


def test_convert_formats_are_the_converters():
    from rdrop_paddle.convert import FORMATS

    assert set(arguments.CONVERT_FORMATS) == {"auto", "x2paddle", "paddlenlp", *FORMATS}


def test_no_paddle_start_up_notices_whoever_set_the_threads(tmp_path):
    """Paddle's OMP_NUM_THREADS warning (about data parallel and OpenBLAS) is noise for a CPU run
    with MKL, whether the tool or the user chose the value (issue 47)."""
    args = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=2", "-o", f"Global.output_dir={tmp_path / 'a'}"]
    quiet = run_tool("tools/train.py", *args, env={"OMP_NUM_THREADS": None})
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    args[-1] = f"Global.output_dir={tmp_path / 'b'}"
    chosen = run_tool("tools/train.py", *args, env={"OMP_NUM_THREADS": "2"})
    assert chosen.returncode == 0 and chosen.stderr == "", chosen.stderr


SWITCHES = {"infer": ["--benchmark", "--enable-mkldnn"], "export": ["--onnx", "--add-softmax", "--no-ema"],
            "eval": ["--per-class", "--no-ema"]}


@pytest.mark.parametrize("command", sorted(SWITCHES))
def test_switches_take_the_bare_form_and_tipcs_key_value_form(command):
    """``--benchmark`` as a person types it, ``--benchmark=True|False`` as TIPC's runners pass every flag."""
    parser = getattr(arguments, COMMANDS[command][1])()
    base = {"infer": ["--model-dir", "m"], "export": ["-c", "c", "--out", "o"], "eval": ["-c", "c"]}[command]
    assert "[{True,False}]" in parser.format_usage()
    for switch in SWITCHES[command]:
        dest = switch.lstrip("-").replace("-", "_")
        default = getattr(parser.parse_args(base), dest)
        for given, value in (([switch], True), ([f"{switch}=True"], True), ([f"{switch}=False"], False),
                             ([f"{switch}=false"], False), ([switch, "True"], True), ([f"{switch}=1"], True)):
            assert getattr(parser.parse_args(base + given), dest) is value, given
        assert default in (False, None)


def test_a_switch_given_a_non_boolean_is_one_line_naming_it():
    res = run_tool("tools/infer.py", "--model-dir", "none", "--benchmark=Yes")
    assert res.returncode == 2 and res.stderr.strip() == (
        "error: argument --benchmark: expected True or False, got 'Yes' (see infer.py --help)")
