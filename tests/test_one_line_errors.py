"""Issue 29.7 and 28.6: inputs and events that gave tracebacks end with one line and a
non-zero exit — config values, crafted weight files, misplaced output paths, a closed pipe,
and a signal while a tool starts or sets up."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

from helpers import ROOT, default_signals, kill_group, one_error_line, run_tool, train_ok
from hostile import safetensors_file, torch_view_pickle, torch_zip
from rdrop_paddle.convert.readers import load_checkpoint
from rdrop_paddle.errors import UserInputError

QUICK = ["-c", "configs/quickstart.yaml", "-o", "Global.max_steps=2"]


@pytest.mark.parametrize("override,message", [
    ("Global.seed=2001-13-45", "month must be in 1..12"),
    ("Global.seed=!!float abc", "could not convert string to float"),
    ("Global.seed=" + "1" * 5000, "Exceeds the limit"),
    ("Loss.alpha=" + "[" * 100_000, "nested too deeply"),
    ("Global.stop_timeout=1e10", "Global.stop_timeout must be a number of seconds in (0, 86,400]"),
    ("Data.auto_augment=rand-ninf", "cannot read 'ninf'"),
    ("Data.crop_pct=1e-300", "Data.crop_pct 1e-300 resizes 8 px images to 8e+300 px"),
    ("Data.crop_pct=5e-324", "Data.crop_pct 4.94066e-324 resizes 8 px images to inf px"),
    ("Data.num_workers=" + "1" + "0" * 23, "Data.num_workers must be at most 256"),
])
def test_config_values_are_one_line(tmp_path, override, message):
    line = one_error_line(run_tool("tools/train.py", *QUICK, "-o", f"Global.output_dir={tmp_path / 'o'}",
                                   "-o", override))
    assert message in line and len(line) < 600
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value,message", [
    ('"a\\0b"', "Global.output_dir holds a NUL character"),
    ('"a\\udcffb"', "is not valid UTF-8 text"),
    ("2001-13-45", "month must be in 1..12"),
])
def test_config_file_values_are_one_line(tmp_path, value, message):
    text = (ROOT + "/configs/quickstart.yaml")
    with open(text, encoding="utf-8") as fh:
        yaml_text = fh.read()
    key = "seed: 42" if value[0] != '"' else "output_dir: output/quickstart"
    new = key.split(":")[0] + ": " + value
    (tmp_path / "c.yaml").write_text(yaml_text.replace(key, new), encoding="utf-8")
    assert message in one_error_line(run_tool("tools/train.py", "-c", tmp_path / "c.yaml"))


def test_crafted_weight_files_are_one_error(tmp_path):
    np.savez(tmp_path / "other.npz", w=np.ones(3))
    with zipfile.ZipFile(tmp_path / "other.npz", "a") as zf:
        zf.writestr("notes.txt", "hello")
    cases = {"other.npz": "member 'notes.txt' is not a .npy array"}
    storage = np.arange(4, dtype=np.float32).tobytes()
    for name, view in (("stride", (0, [2], [10 ** 30])), ("size", (0, [0, 10 ** 30], [1, 1]))):
        torch_zip(tmp_path / f"{name}.pth", torch_view_pickle(*view), {"0": storage})
        cases[f"{name}.pth"] = "must be up to 32 integers in [0, 2**48)"
    header = b"{" + b",".join(b'"%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i
                               for i in range(200_000)) + b"}"
    safetensors_file(tmp_path / "many.safetensors", header, b"")
    cases["many.safetensors"] = "more than 100,000 tensors"
    for name, message in cases.items():
        with pytest.raises(UserInputError, match=re.escape(message)):
            load_checkpoint(str(tmp_path / name))


def test_an_encrypted_zip_member_is_one_error(tmp_path):
    """zipfile reads the encryption flag only; a flagged member is refused, not a traceback."""
    np.savez(tmp_path / "enc.npz", w=np.ones(3))
    raw = bytearray((tmp_path / "enc.npz").read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # local and central headers: set flag bit 0
        pos = raw.find(sig)
        flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
        raw[flag_at] |= 1
    (tmp_path / "enc.npz").write_bytes(bytes(raw))
    with pytest.raises(UserInputError, match="enc.npz: not a readable .npz file"):
        load_checkpoint(str(tmp_path / "enc.npz"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    train_ok(*QUICK, "-o", f"Global.output_dir={root / 'run'}")
    res = run_tool("tools/export_model.py", *QUICK, "-o", f"Global.output_dir={root / 'run'}", "--out", root / "exp")
    assert res.returncode == 0, res.stderr[-2000:]
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "digit.png")
    (root / "file").write_text("x")
    return root


def test_misplaced_outputs_are_refused_before_the_work(exported, tmp_path):
    res = run_tool("tools/infer.py", "--model-dir", exported / "exp", "--images", exported / "digit.png",
                   "--out", exported / "file" / "p.json")
    assert "file, not a folder" in one_error_line(res)
    res = run_tool("tools/eval.py", *QUICK, "-o", f"Global.output_dir={exported / 'file' / 'run'}",
                   "-o", f"Model.pretrained={exported / 'run' / 'best.pdparams'}")
    assert "file, not a folder" in one_error_line(res) and "eval " not in res.stdout  # not evaluated first


def test_an_infer_config_that_does_not_fit_the_model_is_one_line(exported, tmp_path):
    import shutil

    shutil.copytree(exported / "exp", tmp_path / "exp")
    cfg = json.loads((tmp_path / "exp" / "infer_cfg.json").read_text())
    (tmp_path / "exp" / "infer_cfg.json").write_text(json.dumps({**cfg, "image_size": 16}))
    res = run_tool("tools/infer.py", "--model-dir", tmp_path / "exp", "--images", exported / "digit.png",
                   "--out", tmp_path / "p.json")
    assert "the exported model cannot run on [1, 16, 16] (C, H, W) inputs, the size its infer_cfg.json gives" \
        in one_error_line(res)


def test_pillow_warnings_stay_inside(tmp_path):
    from PIL import Image

    from rdrop_paddle.data.decode import read_image

    Image.new("L", (9500, 9500)).save(tmp_path / "big.png")  # past the warning size, below the error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserInputError, match="big.png: not an image this tool can read"):
            read_image(str(tmp_path / "big.png"), 1)


@pytest.mark.parametrize("tool,args", [
    ("tools/train.py", [*QUICK[:2], "-o", "Global.max_steps=40", "-o", "Global.log_every=1"]),
    ("tools/infer.py", None),
])
@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(exported, tmp_path, tool, args):
    if args is None:
        (tmp_path / "many").mkdir()  # 3,000 table lines: more than a pipe holds, so writing
        for i in range(3000):  # meets the closed pipe for sure
            os.link(exported / "digit.png", tmp_path / "many" / f"{i:04d}.png")
        args = ["--model-dir", str(exported / "exp"), "--images", str(tmp_path / "many"),
                "--out", str(tmp_path / "p.json")]
    else:
        args = [*args, "-o", f"Global.output_dir={tmp_path / 'run'}"]
    cmd = f"{sys.executable} {ROOT}/{tool} {' '.join(args)} | head -2"
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_signals)
    try:  # a hang-guard, not a speed bound; the trainer is killed with its group whatever happens
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        kill_group(proc)
    res = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    assert "Traceback" not in res.stderr and "Logging error" not in res.stderr, res.stderr[-2000:]
    assert len(res.stdout.splitlines()) == 2
    if tool == "tools/train.py":  # the run goes on, logging to train.log
        assert res.returncode == 0 and "done: best_top1" in (tmp_path / "run" / "train.log").read_text()
    else:
        assert res.returncode == 141, res.stderr


def _before_our_handler(stderr: str, returncode: int, signum: int) -> bool:
    """The signal came while Python itself started (site, encodings) or before ``tools/_entry.py``
    installed our handler: Python's default action (-15 silently; a ``KeyboardInterrupt`` traceback
    for SIGINT, or ``Fatal Python error: init_sys_streams`` while it still initialises its streams),
    which no script can change.  Any later frame of ours is a failure."""
    if returncode == -signum and not stderr:
        return True
    frames = re.findall(r'File "([^"]+)", line (\d+)', stderr)
    with open(os.path.join(ROOT, "tools/train.py"), encoding="utf-8") as fh:
        entry_line = next(i for i, line in enumerate(fh, 1) if line.startswith("import _entry"))
    early = {("tools/train.py", n) for n in range(entry_line + 1)}  # line 0: before its first statement ran
    ours = [(os.path.relpath(f, ROOT), int(n)) for f, n in frames if f.startswith(ROOT)]
    if signum == signal.SIGINT and stderr.lstrip().startswith("Fatal Python error: init_") and not ours:
        return True  # the interpreter itself was initialising (its io module): Python aborts, by design
    return (signum == signal.SIGINT and stderr.rstrip().endswith("KeyboardInterrupt") and all(
        f in ("tools/_entry.py", "rdrop_paddle/__init__.py", "rdrop_paddle/utils/__init__.py",
              "rdrop_paddle/utils/signals.py") or (f, n) in early
        for f, n in ours))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.02, 0.05, 0.3, 0.8, 1.5, 2.5])
def test_a_signal_while_starting_is_one_line(tmp_path, signum, delay):
    """Before: a KeyboardInterrupt traceback from ``import paddle``, "Can not import paddle
    core", or Paddle's C++ "Termination signal" block."""
    proc = subprocess.Popen([sys.executable, f"{ROOT}/tools/train.py", *QUICK[:2], "-o", "Global.max_steps=100000",
                             "-o", f"Global.output_dir={tmp_path / 'run'}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_signals,  # as a terminal leaves them, even under `pytest &`
                            env={k: v for k, v in os.environ.items() if not k.startswith("OMP_")})
    try:
        time.sleep(delay)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        kill_group(proc)  # never a 100,000-step trainer left running
    if _before_our_handler(stderr, proc.returncode, signum):
        assert stdout == "" and not (tmp_path / "run").exists(), stderr[-2000:]
        return
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and "Termination signal" not in stderr and len(lines) <= 1, stderr[-2000:]
    saved = f"{signal.Signals(signum).name}: saved step" in stdout  # the loop had begun: saved at a step
    expected = (130 if signum == signal.SIGINT else 0) if saved else 128 + signum
    assert proc.returncode == expected, (proc.returncode, stdout[-500:], stderr[-500:])


@pytest.mark.parametrize("tool,args,message", [
    ("benchmarks/data_bench.py", ["--images", "0"], "argument --images: expected whole numbers in [1, 100,000]"),
    ("benchmarks/data_bench.py", ["--samples", "-5"], "argument --samples"),
    ("benchmarks/data_bench.py", ["--size", "0"], "argument --size"),
    ("benchmarks/data_bench.py", ["--rss", "abc"], "argument --rss: expected whole numbers"),
    ("benchmarks/infer_backends.py", ["--sizes", "abc"], "argument --sizes: expected whole numbers"),
    ("benchmarks/infer_backends.py", ["--backends", "nope"], "unknown model or backend 'nope'"),
])
def test_benchmark_tools_arguments_are_one_line(tool, args, message):
    assert message in one_error_line(run_tool(tool, *args))


def test_an_error_line_shows_control_characters_escaped(tmp_path):
    """A list entry holding a NUL byte is named with the NUL escaped, not printed raw."""
    (tmp_path / "train.txt").write_bytes(b"a\x00b.png 0\n")
    res = run_tool("tools/train.py", *QUICK, "-o", "Data.name=filelist", "-o", f"Data.root={tmp_path}",
                   "-o", f"Data.train_list={tmp_path / 'train.txt'}", "-o", f"Data.val_list={tmp_path / 'train.txt'}",
                   "-o", "Model.image_size=8", "-o", f"Global.output_dir={tmp_path / 'o'}")
    line = one_error_line(res)
    assert "\x00" not in res.stderr and "a\\x00b.png" in line, line
