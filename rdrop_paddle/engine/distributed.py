"""Process groups and seeds: fleet collective init, rank queries, metric all-reduce."""
from __future__ import annotations

import os
import random

import numpy as np
import paddle
import paddle.distributed as dist

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.utils.capture import filtered_output


def world_size() -> int:
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device: str) -> None:
    """Select the device and, under ``paddle.distributed.launch``, start fleet (collective)."""
    if device == "gpu":
        if not paddle.is_compiled_with_cuda():
            raise UserInputError("Global.device is gpu but this paddle build has no CUDA; "
                                 "install paddlepaddle-gpu or set -o Global.device=cpu")
        paddle.set_device(f"gpu:{dist.ParallelEnv().device_id}")
    else:
        paddle.set_device("cpu")
    if world_size() > 1:
        from paddle.distributed import fleet

        with filtered_output(_fleet_chatter):
            fleet.init(is_collective=True)


def _fleet_chatter(line: str) -> bool:
    """What ``fleet.init`` prints on every rank when all is well: the flags Paddle itself
    changed, its TCP store's connection log, topology notes and a group warning."""
    return (line.startswith(("=====", "FLAGS(name=", "  warnings.warn(")) or
            any(s in line for s in ("tcp_store.cc", "tcp_utils.cc", "topology.py", "is not in group")))


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum a list of floats over ranks (float64; identity on a single process)."""
    if world_size() == 1:
        return list(values)
    t = paddle.to_tensor(values, dtype="float64")
    dist.all_reduce(t)
    return t.numpy().tolist()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from any non-negative integers (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def seed_everything(seed: int) -> None:
    """Python, NumPy and Paddle generators from one run seed in [0, 2**63)."""
    random.seed(seed)
    np.random.seed(derive_seed(seed, 0) % 2 ** 32)
    paddle.seed(derive_seed(seed, 1))


def dropout_seed(seed: int, rank: int, step: int) -> int:
    """Seed of step ``step`` on ``rank``: dropout masks differ per rank and per step, and a
    resumed run draws exactly what an uninterrupted one would."""
    return derive_seed(seed, 2, rank, step)
