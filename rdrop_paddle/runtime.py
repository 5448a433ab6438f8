"""Process-level settings that Paddle reads once, when it is first imported.

Paddle's CPU wheel runs its matmuls on one thread unless ``OMP_NUM_THREADS``
is set, and its bundled MKL takes a slow code path on AMD processors unless
``MKL_DEBUG_CPU_TYPE=5``.  Both only act if set before ``import paddle``; on
the 2-core AMD machine this project is developed on they make a ViT matmul
about 5x faster.  ``import rdrop_paddle`` applies them (``setdefault``: values
the user exported are kept).  Code that imports paddle first must export them
itself.
"""
import os
import sys


def configure_cpu_env() -> bool:
    """Default ``OMP_NUM_THREADS`` and ``MKL_DEBUG_CPU_TYPE``; False if too late.

    Returns False (and changes nothing) when paddle is already imported, since
    the variables would then have no effect.
    """
    if "paddle" in sys.modules:
        return False
    os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    return True
