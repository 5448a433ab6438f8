"""Running a tool as a user does, bounded: its own process group (killed whole on every exit
path, a timeout included), signal dispositions reset in the child, and its peak memory read
from the kernel's accounting of that one child (``wait4``)."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from helpers import ROOT, default_signals


@dataclass
class Bounded:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


def run_bounded(*args, timeout: float = 180, env=None, stdin=subprocess.DEVNULL) -> Bounded:
    """``python tools/X.py ARGS`` (``args[0]`` the tool) in a new session; a run past ``timeout``
    seconds is killed with its whole group and fails the test as a hang."""
    cmd = [sys.executable, os.path.join(ROOT, args[0])] + [str(a) for a in args[1:]]
    # as a user's shell: the tool chooses OMP_NUM_THREADS (the suite's conftest exported one)
    environment = {k: v for k, v in {**os.environ, "OMP_NUM_THREADS": None, **(env or {})}.items() if v is not None}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=stdin, stdout=out, stderr=err, env=environment,
                                start_new_session=True, preexec_fn=default_signals)
        reaped = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = True
                    break
                if time.monotonic() - start > timeout:
                    raise AssertionError(f"{args[0]} still running after {timeout} s: a hang")
                time.sleep(0.05)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the tool's children too, whatever happened
            except ProcessLookupError:
                pass
            if not reaped:
                os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Bounded(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       time.monotonic() - start, usage.ru_maxrss / 1024)
