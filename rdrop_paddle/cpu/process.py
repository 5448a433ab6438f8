"""Process settings that make Paddle's CPU build fast.

- ``OMP_NUM_THREADS`` and ``MKL_DEBUG_CPU_TYPE=5``: Paddle's CPU wheel runs its matmuls on
  one thread unless the first is set, and its bundled MKL takes a slow generic code path
  on AMD processors unless the second is.  Both are read once, when paddle loads, so
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

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
STRIDE_FLAG = "FLAGS_use_stride_kernel"


def kernels_enabled() -> bool:
    """Whether models use the CPU layers of this package (``RDROP_CPU_KERNELS=0``: Paddle's own)."""
    return os.environ.get("RDROP_CPU_KERNELS", "1") != "0"


def configure_environment() -> bool:
    """Default the threading variables; False (nothing set) if paddle is already loaded."""
    if "paddle" in sys.modules:
        return False
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    return True


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
