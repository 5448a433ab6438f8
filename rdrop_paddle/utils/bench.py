"""Helpers shared by the scripts in ``benchmarks/``: one measurement
per worker process (so peak memory is that process's, and the two frameworks' OpenMP
runtimes do not spin against each other), medians, and a description of the machine."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable


def run_worker(script: str, args: list[str], env: dict | None = None) -> dict:
    """Run ``python script ARGS`` and return the JSON object on its last stdout line."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def emit(result: dict) -> None:
    """The worker's side of :func:`run_worker`."""
    print(json.dumps(result), flush=True)


def median_seconds(fn: Callable[[], object], repeats: int, inner: int = 1, warmup: int = 1) -> float:
    """Median over ``repeats`` of the time of ``inner`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_step(net, opt, loss_fn: Callable[[], object]) -> Callable[[], float]:
    """One PyTorch training step as the official code takes it: the loss, backward, grad-norm
    clip 1.0, the optimizer step."""
    import torch

    def step() -> float:
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return float(loss)
    return step


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """CPU (vendor, model, instruction sets), cores, Python and the variables the package sets,
    for the header of a results table."""
    from rdrop_paddle.cpu.info import cpu_info, environment_for

    info = cpu_info()
    cpu = info.model if info.model != "unknown CPU" else (platform.processor() or platform.machine())
    variables = ["OMP_NUM_THREADS", *environment_for(info), "MKL_DEBUG_CPU_TYPE"]
    shown = ", ".join(f"{k}={os.environ.get(k)}" for k in dict.fromkeys(variables))
    return (f"{cpu} ({info.vendor}; {' '.join(info.flags) or 'no AVX2'}), {len(os.sched_getaffinity(0))} cores; "
            f"Python {platform.python_version()}; {shown}; {time.strftime('%Y-%m-%d')}")
