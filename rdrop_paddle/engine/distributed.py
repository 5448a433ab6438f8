"""Process groups and seeds: fleet collective init, rank queries, metric all-reduce."""
from __future__ import annotations

import itertools
import os
import random
import sys
import time

import numpy as np
import paddle
import paddle.distributed as dist

from rdrop_paddle.errors import RankFailed, UserInputError
from rdrop_paddle.utils.capture import filtered_output


def world_size() -> int:
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_main() -> bool:
    return rank() == 0


_WAIT = {"timeout": 1800.0, "notice_every": 10.0}
_ARRIVALS = itertools.count()


def init(device: str, setup_timeout: float = 1800.0) -> None:
    """Select the device and, under ``paddle.distributed.launch``, start fleet (collective);
    ``setup_timeout``: seconds :func:`wait_for_all` waits for the other ranks."""
    _WAIT["timeout"] = setup_timeout
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


def wait_for_all() -> None:
    """Every rank reaches this point before any goes on to the collective after it.

    A gloo collective gives up after about 30 s, so a rank much slower at a stage (a data
    set on slow shared storage, a large save) made the others die with a TIMEOUT.  Here the
    ranks meet through the launcher's TCP store instead, waiting up to ``setup_timeout``
    seconds and saying every few seconds whom they wait for; past it, every rank that came
    stops with one line naming those that did not (a late rank stops when it arrives)."""
    if world_size() == 1:
        return
    from paddle.base import core

    key, me, timeout = f"rdrop/arrive/{next(_ARRIVALS)}", rank(), _WAIT["timeout"]
    try:
        _meet(core.create_or_get_global_tcp_store(), key, me, timeout)
    except RankFailed:
        raise
    except (ValueError, RuntimeError, OSError) as e:  # the store lives in node 0's launcher
        raise RankFailed(f"rank {me} of {world_size()} lost the other ranks while waiting for them (they "
                         f"stopped; the launcher's store is gone: {' '.join(str(e).split())[:120]})") from None


def _meet(store, key: str, me: int, timeout: float) -> None:
    def absent() -> list[int]:
        return [r for r in range(world_size()) if not store.add(f"{key}/{r}", 0)]

    store.add(f"{key}/{me}", 1)
    count, start = store.add(key, 1), time.monotonic()
    notice_at = start + _WAIT["notice_every"]
    while count < world_size():
        waited = time.monotonic() - start
        if store.add(f"{key}/gave_up", 0) or waited > timeout:
            store.add(f"{key}/gave_up", 1)
            raise RankFailed(f"rank(s) {', '.join(map(str, absent())) or 'none'} of {world_size()} did not "
                             f"reach the same stage within Global.setup_timeout ({timeout:g} s); stopping")
        missing = absent() if time.monotonic() >= notice_at else []
        if missing:
            print(f"rank {me}: waiting for rank(s) {', '.join(map(str, missing))} ({waited:.0f} s of "
                  f"Global.setup_timeout {timeout:g} s)", file=sys.stderr, flush=True)
            notice_at += _WAIT["notice_every"]
        time.sleep(0.1)
        count = store.add(key, 0)
    if store.add(f"{key}/gave_up", 0):  # arrived after the others stopped waiting
        raise RankFailed(f"rank {me} of {world_size()} reached a stage after the other ranks stopped waiting "
                         f"for it (Global.setup_timeout {timeout:g} s)")


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
