"""Process-level settings that make Paddle's CPU build fast; applied by ``import rdrop_paddle``.

1. Paddle's CPU wheel runs its matmuls on one thread unless ``OMP_NUM_THREADS`` is
   set, and its bundled MKL takes a slow code path on AMD processors unless
   ``MKL_DEBUG_CPU_TYPE=5``.  Both only act if set before ``import paddle``; on the
   2-core AMD machine this project is developed on they make a ViT matmul about 5x
   faster.  They are set with ``setdefault``: values the user exported are kept.
2. Paddle 3's "stride kernels" make ``transpose`` and ``unbind`` return views, and the
   next op copies them back to contiguous memory with a slow generic kernel (a
   [16, 197, 6, 64] transpose: 13 ms, against 1.3 ms for the transpose kernel itself);
   attention does this for q, k, v and its output in every block, forward and
   backward.  ``FLAGS_use_stride_kernel=0`` makes them copying ops again.  Also set
   with ``setdefault``; ``paddle.set_flags`` can change it later.
3. glibc serves every allocation above 128 KiB with a fresh ``mmap`` and returns it
   on free, so each large Paddle tensor pays page faults on first touch: a bias add
   over a 19 MB activation took as long as the matmul before it.  Raising glibc's
   mmap and trim thresholds (``mallopt``) lets freed memory be reused instead
   (a ViT linear layer: 62 ms -> 36 ms).  This can be changed at any time; set
   ``RDROP_MALLOC_TUNING=0`` to keep glibc's defaults.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


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


def configure_cpu_env() -> bool:
    """Default the threading variables and tune malloc; False if paddle was imported first.

    When paddle is already imported the variables would have no effect and are not set
    (malloc is tuned either way).
    """
    tune_malloc()
    if "paddle" in sys.modules:
        return False
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    os.environ.setdefault("FLAGS_use_stride_kernel", "0")
    return True
