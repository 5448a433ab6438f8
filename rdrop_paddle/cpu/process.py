"""Process settings that make Paddle's CPU build fast.

- ``OMP_NUM_THREADS`` and, on AMD only, ``MKL_DEBUG_CPU_TYPE=5``: Paddle's CPU wheel runs its
  matmuls on one thread unless the first is set, and its bundled MKL takes a slow generic code
  path on AMD processors unless the second is (on Intel it would switch AVX-512 off:
  :mod:`~rdrop_paddle.cpu.info`).  Both are read once, when paddle loads, so
  :func:`configure_environment` must run before ``import paddle``; it only fills in
  variables the user has not exported.
- ``FLAGS_use_stride_kernel``: Paddle 3 makes ``transpose``/``unbind`` return strided
  views and copies them back to contiguous memory with a slow generic kernel when the next
  operator needs it; attention does this for q, k, v and its output in every block.
  A runtime flag: :func:`configure_device` turns it off after paddle has loaded.
- glibc ``mallopt``: glibc serves each allocation above 128 KiB with a fresh ``mmap`` and
  unmaps it on free, so every large activation pays page faults on first touch.  Raising
  the mmap and trim thresholds keeps freed memory for reuse, trading some peak RSS.
  ``RDROP_MALLOC_TUNING=0`` keeps glibc's defaults.

The tools call :func:`configure_environment` first thing and :func:`configure_device`
once the device is known; library users call :func:`configure` (see README).
Nothing here runs on import.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import os
import sys
import warnings
from typing import Iterator

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
STRIDE_FLAG = "FLAGS_use_stride_kernel"


def kernels_enabled() -> bool:
    """Whether models use the CPU layers of this package (``RDROP_CPU_KERNELS=0``: Paddle's own)."""
    return os.environ.get("RDROP_CPU_KERNELS", "1") != "0"


_CONFIGURED = False  # whether this process called configure_environment (the tools) or configure
_NOTICED = False


def configure_environment() -> bool:
    """Default the threading variables; False (nothing set) if paddle is already loaded."""
    global _CONFIGURED
    _CONFIGURED = True
    if "paddle" in sys.modules:
        return False
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    from rdrop_paddle.cpu.info import cpu_info, environment_for

    for key, value in environment_for(cpu_info()).items():
        os.environ.setdefault(key, value)
    return True


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """Wrap the first ``import paddle``: drop the start-up notices this package provokes.
    Paddle warns on stderr whenever ``OMP_NUM_THREADS`` > 1, whoever chose the value (its text
    is about data parallel and OpenBLAS; Paddle's CPU wheel uses MKL: dropped), and its
    C++-extension builder, which this package never uses, warns that ccache is missing.
    Everything else written to stderr meanwhile is passed through."""
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    captured = io.StringIO()
    omp = ("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY")
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        for line in captured.getvalue().splitlines(keepends=True):
            if not line.startswith(omp):
                sys.stderr.write(line)


def notice_unconfigured() -> None:
    """Once per process, on stderr: a model is being built on a multi-core CPU by a process
    that never called :func:`configure`, so Paddle runs its matmuls on one thread (it sets
    ``OMP_NUM_THREADS=1`` when the variable is unset; ``paddle.distributed.launch`` does so
    on purpose, one process per core)."""
    global _NOTICED
    if _CONFIGURED or _NOTICED or int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1:
        return
    import paddle

    cores = len(os.sched_getaffinity(0))
    if os.environ.get("OMP_NUM_THREADS") != "1" or cores < 2 or not paddle.device.get_device().startswith("cpu"):
        return
    _NOTICED = True
    print(f"notice: Paddle runs on 1 of {cores} CPU cores in this process; call rdrop_paddle.cpu.configure() "
          f"before importing paddle (README, Performance on CPU)", file=sys.stderr)


def tune_malloc() -> bool:
    """Keep freed heap memory for reuse (glibc only); False where not applied."""
    if os.environ.get("RDROP_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return all(libc.mallopt(opt, value) == 1 for opt, value in (
        (_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, 1 << 30)))


def configure_device(device: str) -> None:
    """After paddle has loaded: on CPU, stride kernels off (unless exported) and malloc tuned."""
    if device != "cpu":
        return
    from rdrop_paddle.compat import check_paddle

    if "paddle" not in sys.modules:
        with quiet_start():  # its OMP_NUM_THREADS notice is about a value this package chose
            importlib.import_module("paddle")
    check_paddle()
    import paddle

    if STRIDE_FLAG not in os.environ and STRIDE_FLAG in paddle.get_flags([STRIDE_FLAG]):
        paddle.set_flags({STRIDE_FLAG: False})
    tune_malloc()


def configure(device: str = "cpu") -> bool:
    """Everything above, for library users: call it before ``import paddle`` for the threading
    variables to count (returns False if paddle was loaded first; the rest still applies)."""
    before = configure_environment()
    configure_device(device)
    return before
