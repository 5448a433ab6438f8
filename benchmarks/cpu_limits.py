"""The machine's fp32 limits for the inference table: CPU flags, the theoretical peak and a
large sgemm through NumPy's and PyTorch's BLAS (the practical ceiling), and the FLOPs of a ViT."""
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


def clock_ghz() -> float:
    """The clock /proc/cpuinfo reports (the current one; turbo may be higher)."""
    with open("/proc/cpuinfo") as fh:
        return max(float(line.split(":")[1]) for line in fh if line.startswith("cpu MHz")) / 1000


def theoretical_peak(cores: int, flags: list[str]) -> tuple[float, str]:
    """``cores x 2 FMA units x fp32 lanes x 2 flops x clock`` in GFLOP/s, and that formula in words."""
    lanes = 16 if "avx512f" in flags else 8
    ghz = clock_ghz()
    return cores * 2 * lanes * 2 * ghz, f"{cores} cores x 2 FMA units x {lanes} fp32 lanes x 2 x {ghz:.2f} GHz"


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
