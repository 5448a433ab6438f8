"""The machine's fp32 limits for the inference table: CPU flags, the theoretical peak (from the
maximum clock, where the machine tells it) and a large sgemm through NumPy's and PyTorch's BLAS
measured on a quiet machine (the practical ceiling: the larger of the two), and the FLOPs of a ViT."""
from __future__ import annotations

import os
import statistics
import time

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_flags() -> list[str]:
    """The flags among :data:`FLAGS` that ``/proc/cpuinfo`` lists."""
    try:
        with open("/proc/cpuinfo") as fh:
            line = next(line for line in fh if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in FLAGS if f in have]


def max_clock_ghz() -> float | None:
    """The CPU's maximum clock (``cpufreq/cpuinfo_max_freq``), or None where the machine does not
    say (a VM often does not; /proc/cpuinfo's "cpu MHz" is the current clock, not the maximum)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as fh:
            return int(fh.read().strip()) / 1e6
    except (OSError, ValueError):
        return None


def theoretical_peak(cores: int, flags: list[str]) -> tuple[float | None, str]:
    """``cores x 2 FMA units x fp32 lanes x 2 flops x maximum clock`` in GFLOP/s and that formula
    in words; None (and why) where the maximum clock is not readable."""
    lanes = 16 if "avx512f" in flags else 8
    ghz = max_clock_ghz()
    if ghz is None:
        return None, "no maximum clock readable (cpufreq), so no theoretical peak"
    return cores * 2 * lanes * 2 * ghz, f"{cores} cores x 2 FMA units x {lanes} fp32 lanes x 2 x {ghz:.2f} GHz"


def quiet_ceiling(measure, max_load: float = 1.0, waits: int = 6, pause: float = 10.0) -> tuple[dict, float]:
    """``{framework: GFLOP/s}`` of ``measure(framework)`` for NumPy and PyTorch, and the 1-minute
    load average it was measured at: measured again (up to ``waits`` times, ``pause`` s apart)
    while the load average is above ``max_load``, keeping the best of each."""
    best, load = {}, os.getloadavg()[0]
    for attempt in range(waits + 1):
        load = os.getloadavg()[0]
        for framework in ("numpy", "torch"):
            best[framework] = max(best.get(framework, 0.0), measure(framework))
        if load <= max_load or attempt == waits:
            break
        time.sleep(pause)
    return best, load


def sgemm_gflops(framework: str, n: int = 4096, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an ``n x n`` float32 matmul (median is reported by the caller's runs)."""
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    if framework == "torch":
        import torch

        torch.set_num_threads(len(os.sched_getaffinity(0)))
        a = torch.from_numpy(a)
        run = lambda: torch.mm(a, a)  # noqa: E731
    else:
        run = lambda: a @ a  # noqa: E731
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def vit_gflop(hidden: int, layers: int, image: int, patch: int = 16, classes: int = 100) -> float:
    """Forward GFLOP of one image (a multiply-add = 2 FLOP): patch embedding, per layer the
    qkv/proj/MLP matmuls (12 N D^2) and attention (2 N^2 D), the head."""
    n = (image // patch) ** 2 + 1
    macs = (n - 1) * hidden * 3 * patch * patch + layers * (12 * n * hidden ** 2 + 2 * n * n * hidden)
    return 2 * (macs + hidden * classes) / 1e9
