"""Ranks that agree or stop together: shared failures, fingerprints, rank 0's state for all.

Under data parallel every rank must reach every collective; a rank that fails alone
leaves the others waiting in one until a communication timeout.  So the places where a
rank can fail alone report through a collective instead:

* :func:`together` wraps a stage (setup, resume, save): every rank learns whether any
  rank failed and raises the same one-line error, naming the rank(s) and the cause;
* :func:`agree` compares a fingerprint (config, data sizes, initial weights) before
  anything is written;
* :func:`broadcast_tree` sends rank 0's weights and training state to every rank, so
  only rank 0 reads checkpoints and nodes need no shared storage.

Messages and trees travel as bytes in ``uint8`` tensors (JSON plus raw array bytes):
nothing received is unpickled.  On a single process every function is the identity.
"""
from __future__ import annotations

import contextlib
import json
from typing import Iterator, Optional

import numpy as np
import paddle

from rdrop_paddle.config.schema import PER_NODE_KEYS, Config
from rdrop_paddle.engine import distributed as dist
from rdrop_paddle.errors import DataLoadingError, RankFailed, TrainingDiverged, UserInputError
from rdrop_paddle.io import digest

_KNOWN = {cls.__name__: cls for cls in (UserInputError, TrainingDiverged, DataLoadingError, RankFailed)}
_CHUNK = 64 << 20  # bytes per broadcast


def _bytes_tensor(data: bytes, size: int) -> paddle.Tensor:
    buf = np.zeros(max(size, 1), dtype=np.uint8)
    buf[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return paddle.to_tensor(buf)


def gather_bytes(data: bytes) -> list[bytes]:
    """Every rank's ``data``, in rank order (a collective: every rank must call it)."""
    if dist.world_size() == 1:
        return [data]
    sizes: list = []
    paddle.distributed.all_gather(sizes, paddle.to_tensor([len(data)], dtype="int64"))
    lengths = [int(s.numpy()[0]) for s in sizes]
    parts: list = []
    paddle.distributed.all_gather(parts, _bytes_tensor(data, max(lengths)))
    return [p.numpy().tobytes()[:n] for p, n in zip(parts, lengths)]


def broadcast_bytes(data: Optional[bytes]) -> bytes:
    """Rank 0's ``data`` on every rank (the others pass None)."""
    if dist.world_size() == 1:
        return data
    size = paddle.to_tensor([len(data) if dist.is_main() else 0], dtype="int64")
    paddle.distributed.broadcast(size, src=0)
    size = int(size.numpy()[0])
    chunks = []
    for start in range(0, size, _CHUNK):
        n = min(_CHUNK, size - start)
        t = _bytes_tensor(data[start:start + n] if dist.is_main() else b"", n)
        paddle.distributed.broadcast(t, src=0)
        chunks.append(t.numpy().tobytes()[:n])
    return b"".join(chunks)


def share_failure(error: Optional[BaseException]) -> None:
    """Collective: raise on every rank if ``error`` is set on any.  The error keeps the
    class of the first failing rank's (one of the package's) and names the failing ranks;
    a rank whose own error is not one of the package's re-raises it (a bug keeps its
    traceback) and the others raise :class:`RankFailed`."""
    mine = "" if error is None else f"{type(error).__name__}\t{' '.join(str(error).split())}"
    reports = [r.decode("utf-8", "replace") for r in gather_bytes(mine.encode())]
    failed = [(rank, *r.split("\t", 1)) for rank, r in enumerate(reports) if r]
    if not failed:
        return
    if error is not None and type(error).__name__ not in _KNOWN:
        raise error
    by_message: dict[str, list[int]] = {}
    for rank, _, message in failed:
        by_message.setdefault(message, []).append(rank)
    text = "; ".join(f"rank{'s' if len(r) > 1 else ''} {', '.join(map(str, r))} of {dist.world_size()}: {m}"
                     for m, r in by_message.items())
    raise _KNOWN.get(failed[0][1], RankFailed)(text)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """Run a stage on every rank; if it fails on any, it fails on all with the same error
    (see :func:`share_failure`).  The ranks first meet through the launcher's store
    (:func:`~rdrop_paddle.engine.distributed.wait_for_all`: a slow rank is waited for up to
    ``Global.setup_timeout``), then exchange one small all-gather."""
    error = None
    try:
        yield
    except Exception as e:  # every rank must reach the exchange below
        if dist.world_size() == 1:
            raise
        error = e
    dist.wait_for_all()  # however long the slowest rank took (up to Global.setup_timeout)
    share_failure(error)


def agree(fingerprint: dict) -> None:
    """Raise a :class:`UserInputError` on every rank naming each entry of ``fingerprint``
    (JSON values) that is not the same on all ranks."""
    if dist.world_size() == 1:
        return
    prints = [json.loads(b) for b in gather_bytes(json.dumps(fingerprint, sort_keys=True).encode())]
    differ = [f"{key} ({', '.join(f'rank {r}: {p.get(key)}' for r, p in enumerate(prints))})"
              for key in sorted(set().union(*prints)) if len({json.dumps(p.get(key)) for p in prints}) > 1]
    if differ:
        raise UserInputError(f"the ranks disagree, nothing was written: {'; '.join(differ)}"[:2000])


def fingerprint(cfg: Config, plan: tuple, datasets: tuple, raw: paddle.nn.Layer) -> dict:
    """What every rank of a run must share: the config (except per-node paths and
    settings), the batch plan, the data and the freshly initialised weights."""
    keys = {f"{sec}.{key}": value for sec, values in cfg.to_dict().items() for key, value in values.items()
            if f"{sec}.{key}" not in PER_NODE_KEYS}
    sets = {f"{split} set (images, label digest, pixel digest)": [
        len(ds), digest({"y": np.asarray(ds.labels)}) if hasattr(ds, "labels") else None,
        ds.sample_digest() if hasattr(ds, "sample_digest") else None]
        for split, ds in zip(("training", "validation"), datasets)}
    return {**keys, **sets, "batch plan (micro x accum)": list(plan), "paddle": paddle.__version__,
            "initial weights (digest)": digest({k: v.numpy() for k, v in raw.state_dict().items()})}


def _encode(obj, arrays: list) -> object:
    if isinstance(obj, paddle.Tensor):
        obj = obj.numpy()
    if isinstance(obj, (np.ndarray, np.generic)):
        arrays.append(np.ascontiguousarray(obj))
        return {"a": [obj.dtype.str, list(obj.shape), isinstance(obj, np.generic)]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"broadcast_tree: dict keys must be str, got {list(obj)[:5]}")
        return {"d": [[k, _encode(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"l": [_encode(v, arrays) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"v": obj}
    raise TypeError(f"broadcast_tree: cannot send a {type(obj).__name__}")


def _decode(node, blob: memoryview, offset: list) -> object:
    if "a" in node:
        dtype, shape, scalar = node["a"]
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        a = np.frombuffer(blob[offset[0]:offset[0] + n], dtype=dtype).reshape(shape).copy()
        offset[0] += n
        return a[()] if scalar else a
    if "d" in node:
        return {k: _decode(v, blob, offset) for k, v in node["d"]}
    if "l" in node:
        return [_decode(v, blob, offset) for v in node["l"]]
    return node["v"]


def broadcast_tree(tree):
    """Rank 0's ``tree`` (nested dicts with str keys, lists, numbers, str, None, arrays or
    tensors) on every rank, arrays as NumPy arrays; the other ranks pass anything."""
    if dist.world_size() == 1:
        return tree
    header = blob = None
    if dist.is_main():
        arrays: list = []
        header = json.dumps(_encode(tree, arrays)).encode()
        blob = b"".join(a.tobytes() for a in arrays)
    node = json.loads(broadcast_bytes(header))
    return _decode(node, memoryview(broadcast_bytes(blob)), [0])
