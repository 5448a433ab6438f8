"""Files the package writes and reads: atomic writes, strict JSON, and pickles that cannot run code.

Every pickle the package reads goes through :func:`~rdrop_paddle.io.pickles.load_pickle`, the
restricted unpickler.

Readers are bounded: a structure nested deeper than :data:`MAX_DEPTH` or with more than
:data:`MAX_NODES` entries is refused, and shared references (a pickle can name one list
twice, ``x = [x, x]`` sixty times in 438 bytes) are walked once, never re-expanded.

Writes go to a temporary name in the target directory, are flushed to disk and renamed
into place, so a reader sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from typing import Any, Callable, Mapping

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.pickles import MAX_DEPTH, load_pickle

# MAX_DEPTH (100): nesting of containers in any file the package reads, pickles and JSON alike
MAX_NODES = 1_000_000  # containers and values walked in one file


class Budget:
    """Counts the nodes a reader walks; too deep or too many is one :class:`UserInputError`."""

    def __init__(self, what: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
        self.what, self.left, self.max_depth = what, max_nodes, max_depth

    def visit(self, depth: int) -> None:
        self.left -= 1
        if depth > self.max_depth:
            raise UserInputError(f"{self.what}: containers nested more than {self.max_depth} levels "
                                 f"deep; not a file of this kind")
        if self.left < 0:
            raise UserInputError(f"{self.what}: more than {MAX_NODES:,} entries (or shared references "
                                 f"that expand to as many); not a file of this kind")


def _unwrap_tensors(obj: Any, what: str) -> Any:
    """Paddle pickles tensors inside containers as ``(name, ndarray)`` tuples: keep the arrays.
    Each container is converted once (shared references stay shared), within a :class:`Budget`."""
    memo: dict[int, Any] = {}
    budget = Budget(what)

    def visit(o: Any, depth: int) -> Any:
        if not isinstance(o, (dict, list, tuple)):
            return o
        if id(o) in memo:
            return memo[id(o)]
        budget.visit(depth)
        if isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) and isinstance(o[1], np.ndarray):
            out = o[1]
        elif isinstance(o, dict):
            out = type(o)((k, visit(v, depth + 1)) for k, v in o.items())
        else:
            out = type(o)(visit(v, depth + 1) for v in o)
        memo[id(o)] = out
        return out

    return visit(obj, 0)


_PADDLE_NAME_TABLE = "StructuredToParameterName@@"  # added by paddle.save to layer state dicts


def load_paddle(path: str) -> dict:
    """A ``paddle.save``-d dict (``.pdparams``, ``.pdopt``) as NumPy arrays, without running code
    (Paddle's own name table, ``StructuredToParameterName@@``, is dropped)."""
    if not os.path.isfile(path):
        raise UserInputError(f"checkpoint not found: {path}")
    state = _unwrap_tensors(load_pickle(path, encoding="latin1"), path)
    if not isinstance(state, dict):
        raise UserInputError(f"{path} does not hold a state dict (found {type(state).__name__})")
    state.pop(_PADDLE_NAME_TABLE, None)
    return state


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` for a temporary name beside ``path``, then rename it to ``path``.

    The file is flushed to disk first; on any failure the temporary file is removed and
    an existing ``path`` is left as it was.  A file-system error (full disk, read-only
    folder) is a :class:`UserInputError` naming ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserInputError(f"{path} is a directory, not a file name")
    if _is_stream(path):
        return _write_through(path, write)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except OSError as e:
        raise UserInputError(f"cannot write {path}: {e.strerror or e}; nothing there was changed") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_stream(path: str) -> bool:
    """Whether ``path`` names something that is written into, never replaced: an existing
    device, FIFO or socket itself (``/dev/null``, a FIFO the user made), or one of the system's
    links under ``/dev`` (``/dev/stdout``, ``/dev/fd/1``).  Any other symbolic link is replaced
    by the rename, never followed: a link planted in a run folder gets nothing written through it."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            if not os.path.abspath(path).startswith("/dev/"):
                return False
            mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) or os.path.realpath(path).startswith("/proc/")


def _write_through(path: str, write: Callable[[str], None]) -> None:
    """Write into device or FIFO ``path`` as a Unix tool does (the node itself is never
    replaced): the bytes are made in a private temporary file, then copied in.  A FIFO
    without a reader, a socket or a block device is one :class:`UserInputError`."""
    import shutil
    import tempfile

    if stat.S_ISBLK(os.stat(path).st_mode):
        raise UserInputError(f"{path} is a block device; refusing to write to it")
    with tempfile.TemporaryDirectory(prefix="rdrop-out-") as private:
        tmp = os.path.join(private, "out")
        write(tmp)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            reason = "a FIFO with no reader" if e.errno == 6 else (e.strerror or str(e))
            raise UserInputError(f"cannot write to {path}: {reason}; nothing was written") from None
        os.set_blocking(fd, True)
        try:
            with open(tmp, "rb") as src, os.fdopen(fd, "wb", closefd=False) as dst:
                shutil.copyfileobj(src, dst)
        except OSError as e:
            raise UserInputError(f"cannot write to {path}: {e.strerror or e}") from None
        finally:
            os.close(fd)


def open_regular(path: str, flags: int, mode: int = 0o644) -> int:
    """``os.open`` for writing into an existing folder: a symbolic link is never followed and
    only a regular file is opened, so a link, FIFO or device planted at ``path`` is one
    :class:`UserInputError` and nothing is written through it."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if os.path.islink(path):
            raise UserInputError(f"{path} is a symbolic link; refusing to write through it (remove it)") from None
        raise UserInputError(f"cannot write to {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserInputError(f"{path} is not a regular file; refusing to write to it (remove it)")
    return fd


def make_folder(path: str, what: str, create: bool = True) -> None:
    """``os.makedirs(path)`` (with ``create=False`` only the check, nothing created): a file in
    the way, at ``path`` or above it, or a folder that cannot be created is one
    :class:`UserInputError` naming ``what``."""
    above = os.path.abspath(path)
    while not os.path.exists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise UserInputError(f"cannot create {what} {path}: {above} is a file, not a folder")
    try:
        if create:
            os.makedirs(path, exist_ok=True)
    except (OSError, ValueError) as e:
        raise UserInputError(f"cannot create {what} {path}: {getattr(e, 'strerror', None) or e}") from None


def refuse_links(folder: str, names: tuple[str, ...]) -> None:
    """Refuse the run if one of the folders the package writes into inside ``folder`` is a
    symbolic link someone planted: nothing is written through a link it did not create."""
    for name in names:
        if os.path.islink(os.path.join(folder, name)):
            raise UserInputError(f"{os.path.join(folder, name)} is a symbolic link; refusing to write "
                                 f"through it (remove it, or choose another output folder)")


def save_paddle(obj: dict, path: str) -> None:
    """``paddle.save`` written atomically."""
    import paddle

    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


def write_json(obj: Any, path: str) -> None:
    """Strict JSON (a NaN or infinity is an error, not an invalid token), written atomically."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """A short SHA-256 of named arrays (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def as_weights(state: Mapping[str, Any], dtypes: Mapping[str, Any], what: str) -> tuple[dict, str]:
    """``state`` with each array in ``dtypes[key]`` (the model's dtype), and what was cast (or "").

    The one rule of every reader of weights: floating-point arrays of another precision (a
    float16 or float64 file) are cast; integer, bool, complex, text, date and void arrays are
    one :class:`UserInputError` naming the key."""
    out, cast = dict(state), {}
    for key, value in state.items():
        if key not in dtypes or not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind != "f":
            raise UserInputError(f"{what}: {key} holds {value.dtype} values, not floating-point weights")
        target = np.dtype(dtypes[key])
        if value.dtype != target:
            out[key] = value.astype(target)
            cast.setdefault(f"{value.dtype} to {target}", []).append(key)
    notice = "; ".join(f"{len(keys)} arrays cast from {how} (e.g. {keys[0]})" for how, keys in cast.items())
    return out, (f"{what}: {notice}" if notice else "")


def check_fits(shapes: Mapping[str, tuple], target: Mapping[str, tuple], what: str) -> None:
    """Raise one error naming every missing, unexpected or mis-shaped key of ``shapes``."""
    problems = [f"missing {k} {list(target[k])}" for k in target if k not in shapes]
    problems += [f"unexpected {k} {list(shapes[k])}" for k in shapes if k not in target]
    problems += [f"shape of {k}: checkpoint {list(shapes[k])} vs model {list(target[k])}"
                 for k in target if k in shapes and tuple(shapes[k]) != tuple(target[k])]
    if problems:
        more = f" (+{len(problems) - 12} more)" if len(problems) > 12 else ""
        raise UserInputError(f"{what} does not fit the model: " + "; ".join(problems[:12]) + more)


def read_small(path: str, limit: int, kind: str) -> bytes:
    """The bytes of regular file ``path``, refused (naming it and ``kind``) if missing or over ``limit``."""
    if not os.path.isfile(path):
        raise UserInputError(f"{path}: no such file (a {kind} is needed)")
    if os.path.getsize(path) > limit:
        raise UserInputError(f"{path}: larger than {limit >> 10:,} KiB; not a {kind}")
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except OSError as e:
        raise UserInputError(f"cannot read {path}: {e.strerror or e}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: str, limit: int = 1 << 20) -> object:
    """A small JSON file, bounded in bytes; an unreadable one is one message naming it."""
    raw = read_small(path, limit, "JSON config file")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise UserInputError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})"[:300]) from None
