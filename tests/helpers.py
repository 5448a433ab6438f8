"""Running the tools as a user does: a fresh Python process per command."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args, launch: int = 0, timeout: int = 600, log_dir=None) -> subprocess.CompletedProcess:
    """``python tools/X.py ...`` or, with ``launch=N``, under ``paddle.distributed.launch``."""
    cmd = [sys.executable]
    if launch:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(launch)]
        if log_dir:
            cmd += ["--log_dir", str(log_dir)]
    cmd += [os.path.join(ROOT, args[0])] + [str(a) for a in args[1:]]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def train_ok(*args, launch: int = 0, log_dir=None) -> subprocess.CompletedProcess:
    """``tools/train.py ARGS`` that must succeed (its output is shown when it does not)."""
    res = run_tool("tools/train.py", *args, launch=launch, log_dir=log_dir)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res
