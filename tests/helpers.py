"""Running the tools as a user does, and files in genuine formats for the tests to read."""
import io
import os
import pickle
import subprocess
import sys
import tarfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_folder() -> str:
    """Where the suite keeps what it builds once and reuses (the Paddle 2.6 venv):
    ``$RDROP_TEST_CACHE``, else ``~/.cache/rdrop_paddle/tests``."""
    folder = os.environ.get("RDROP_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rdrop_paddle",
                                                                  "tests")
    os.makedirs(folder, exist_ok=True)
    return folder


def cached_venv(name: str, install: str, probe: str) -> str:
    """The python of venv ``name`` in :func:`cache_folder`, built with shell command ``install``
    (its ``pip install`` run by that venv's python, in this checkout) unless ``probe`` (Python
    code) already runs there and prints ``ok``; one process builds it, the others wait (a lock)."""
    import fcntl

    venv = os.path.join(cache_folder(), name)
    python = os.path.join(venv, "bin", "python")
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True) if os.path.exists(python) else None
        if found is None or found.returncode or found.stdout.strip() != "ok":
            subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
            res = subprocess.run(install.replace("pip install", f"{python} -m pip install -q"), shell=True, cwd=ROOT,
                                 capture_output=True, text=True)
            assert res.returncode == 0, res.stderr[-3000:]
    return python


def readme_install_env() -> dict:
    """The environment of a user who ran README's install (``pip install -r requirements.txt``)
    in a fresh venv and nothing else: its ``python`` first on PATH (no test requirements such
    as paddle2onnx there), this process's test-only variables dropped."""
    import hashlib

    stamp = hashlib.sha256(open(os.path.join(ROOT, "requirements.txt"), "rb").read()).hexdigest()[:12]
    python = cached_venv(f"readme-install-{stamp}", "pip install -r requirements.txt",
                         f"import paddle, rdrop_paddle; print('ok' if rdrop_paddle.__file__.startswith({ROOT!r}) else '')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "")
    return env


def run_tool(*args, launch: int = 0, timeout: int = 600, log_dir=None, env=None) -> subprocess.CompletedProcess:
    """``python tools/X.py ...`` or, with ``launch=N``, under ``paddle.distributed.launch``;
    ``env`` adds variables to this process's (None: removes one)."""
    cmd = [sys.executable]
    if launch:
        cmd += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(launch)]
        if log_dir:
            cmd += ["--log_dir", str(log_dir)]
    cmd += [os.path.join(ROOT, args[0])] + [str(a) for a in args[1:]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals,
                            env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None})
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:  # the tool's own children (launch's workers, DataLoader processes) too, on every path
        kill_group(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def default_signals() -> None:
    """In a test's child: SIGINT and SIGTERM as a terminal's shell leaves them, whatever the
    suite was started with (``pytest &`` in a script sets SIGINT to ignored)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)


def kill_group(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group (it was started in a session of its own) and reap it."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait()


def train_ok(*args, launch: int = 0, log_dir=None, env=None) -> subprocess.CompletedProcess:
    """``tools/train.py ARGS`` that must succeed (its output is shown when it does not)."""
    res = run_tool("tools/train.py", *args, launch=launch, log_dir=log_dir, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


def one_error_line(res: subprocess.CompletedProcess, status: int = 2) -> str:
    """The single ``error:`` line of a tool that failed as documented (no traceback)."""
    assert res.returncode == status, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    return errors[0]


def cifar_split(rng, n):
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    return {b"filenames": [f"img_{i}.png".encode() for i in range(n)], b"batch_label": b"tiny",
            b"fine_labels": rng.randint(0, 100, n).tolist(),
            b"coarse_labels": rng.randint(0, 20, n).tolist(), b"data": data}


def write_tar(path, members: dict) -> None:
    """A ``.tar.gz`` whose ``cifar-100-python/{name}`` members hold the given bytes."""
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def make_cifar100(path, n_train=24, n_test=10, seed=0):
    """Write ``cifar-100-python.tar.gz`` as the original: pickled dicts with bytes keys."""
    rng = np.random.RandomState(seed)
    splits = {"train": cifar_split(rng, n_train), "test": cifar_split(rng, n_test),
              "meta": {b"fine_label_names": [b"c%d" % i for i in range(100)]}}
    write_tar(path, {name: pickle.dumps(obj, protocol=2) for name, obj in splits.items()})
    return splits


class Hostile:
    """Unpickling this writes a marker file: what a crafted ``__reduce__`` could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def newest_weights(out, ema: bool = False) -> dict:
    """The weights (or with ``ema`` the EMA weights) of the newest checkpoint under run folder ``out``."""
    from rdrop_paddle.engine import checkpoint

    mgr = checkpoint.CheckpointManager(str(out), 1)
    path = mgr.path(mgr.steps()[-1])
    weights, state = checkpoint.read(path, ema=ema)
    return state["ema"] if ema else weights
