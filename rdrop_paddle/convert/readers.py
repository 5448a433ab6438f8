"""Reading checkpoint files into ``{name: ndarray}`` without running code from them.

- ``.npz``: ``numpy.load(allow_pickle=False)``.
- ``.safetensors``: parsed here (an 8-byte header length, a JSON header, raw little-endian data).
- ``.pth``/``.pt``/``.bin``/``.ckpt``: PyTorch's zip format, read here without torch: its
  ``data.pkl`` goes through the package's restricted unpickler
  (:func:`rdrop_paddle.io.load_pickle`) with stand-ins for torch's two tensor builders, and
  tensor data comes from the zip's raw storage files.  Pre-1.6 (non-zip) files are refused.
- ``.pdparams``: Paddle, through the same restricted unpickler.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import Budget, load_paddle, load_pickle

_TORCH_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                 "BFloat16Storage": "bfloat16", "LongStorage": "<i8", "IntStorage": "<i4",
                 "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
_SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "bfloat16", "I64": "<i8",
                       "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def _frombuffer(raw: bytes, dtype: str) -> np.ndarray:
    """Raw bytes as an array; bfloat16 is widened to float32 (its top 16 bits)."""
    if dtype == "bfloat16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype)


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _byte_budget(path: str) -> int:
    """The most bytes a reader materialises from the file at ``path``: tied weights may share
    storage, so a few times the file, but never the terabytes a crafted file could ask for."""
    return 4 * os.path.getsize(path) + (64 << 20)


def _check_zip(zf: zipfile.ZipFile, path: str) -> None:
    """Refuse an archive whose members claim to unpack to more than :func:`_byte_budget`, or
    are compressed other than stored or deflated (what torch and NumPy write): Python's
    zipfile bounds a deflated member's output by its declared size, but inflates a bzip2 or
    LZMA chunk whole."""
    odd = [i.filename for i in zf.infolist() if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)]
    if odd:
        raise UserInputError(f"{path}: member {odd[0]!r:.80} is compressed with method "
                             f"{zf.getinfo(odd[0]).compress_type}; torch and NumPy write stored or deflated members")
    declared = sum(info.file_size for info in zf.infolist())
    if declared > _byte_budget(path):
        raise UserInputError(f"{path}: its members claim {declared:,} bytes unpacked, more than "
                             f"{_byte_budget(path):,} for a {os.path.getsize(path):,}-byte file")


MAX_DIM = 1 << 48  # one size, stride or offset: far past any tensor, far below overflow


def _ints(value, what: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) > 32 \
            or not all(type(v) is int and 0 <= v < MAX_DIM for v in value):
        raise ValueError(f"{what} must be up to 32 integers in [0, 2**48), got {value!r:.100}")
    return list(value)


class _TorchStorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only remembers the dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


def _tensor_builder(budget: list[int]):
    """``torch._utils._rebuild_tensor_v2`` over a NumPy storage: the view is checked against
    its storage (no element outside it) and copied; ``budget`` bounds the bytes copied."""

    def rebuild(storage, offset, size, stride, *unused):
        if not isinstance(storage, np.ndarray) or type(offset) is not int or not 0 <= offset < MAX_DIM:
            raise ValueError("tensor without a storage and offset")
        size, stride = _ints(size, "tensor size"), _ints(stride, "tensor stride")
        if len(size) != len(stride):
            raise ValueError(f"tensor size {size} and stride {stride} differ in length")
        numel = int(np.prod(size, dtype=object)) if size else 1
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if numel else offset - 1
        if last >= len(storage) or numel > len(storage):
            raise ValueError(f"tensor of size {size}, stride {stride}, offset {offset} reaches past "
                             f"its storage of {len(storage)} elements")
        budget[0] -= numel * storage.itemsize
        if budget[0] < 0:
            raise ValueError("tensors larger in all than the file allows")
        return np.array(np.lib.stride_tricks.as_strided(
            storage[offset:], shape=tuple(size), strides=tuple(s * storage.itemsize for s in stride)))

    return rebuild


def read_torch_zip(path: str) -> object:
    """The object a ``torch.save`` zip file holds, tensors as NumPy arrays."""
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not a PyTorch zip file (torch >= 1.6 writes those; re-save "
                             f"the state_dict with a recent torch, or use .safetensors)")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip(zf, path)
            pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pickles:
                raise UserInputError(f"{path}: zip file without data.pkl; not a PyTorch checkpoint")
            prefix = pickles[0][:-len("data.pkl")]
            storages: dict[str, np.ndarray] = {}

            def persistent_load(pid):
                try:
                    _, kind, key, _location, _numel = pid
                    if key not in storages:
                        storages[key] = _frombuffer(zf.read(f"{prefix}data/{key}"), kind.dtype)
                    return storages[key]
                except (ValueError, TypeError, AttributeError, KeyError) as e:
                    raise ValueError(f"bad tensor storage reference {pid!r} ({e})"[:300]) from None

            extra = {("torch._utils", "_rebuild_tensor_v2"): _tensor_builder([_byte_budget(path)]),
                     ("torch._utils", "_rebuild_parameter"): lambda data, *unused: data}
            extra.update({("torch", name): _TorchStorageType(dtype) for name, dtype in _TORCH_DTYPES.items()})
            return load_pickle(zf.read(pickles[0]), what=path, extra_globals=extra,
                               persistent_load=persistent_load)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise UserInputError(f"{path}: damaged zip archive ({type(e).__name__}: {e})") from None


_MAX_HEADER = 100 << 20  # safetensors limits its JSON header to 100 MB too
MAX_TENSORS = 100_000  # tensors in one file (ViT-L/16 has about 300)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """A ``.safetensors`` file: the header is read and checked first (every tensor's dtype,
    shape and byte range; ranges may neither overlap nor leave the data section), then only
    the bytes the tensors use are read."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(f"{len(head)} bytes, shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", head)
            if length > min(_MAX_HEADER, size - 8):
                raise ValueError(f"header length {length} does not fit the file")
            text = fh.read(length)
            if text.count(b'"data_offsets"') > MAX_TENSORS:  # before parsing it
                raise ValueError(f"the header lists more than {MAX_TENSORS:,} tensors")
            entries = _safetensors_entries(json.loads(text), size - 8 - length)
            raw = memoryview(fh.read(max((end for _, _, end, _ in entries.values()), default=0)))
        return {name: _frombuffer(raw[start:end], dtype).reshape(shape)
                for name, (dtype, start, end, shape) in entries.items()}
    except OSError as e:
        raise UserInputError(f"cannot read {path}: {e.strerror or e}") from None
    except (struct.error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise UserInputError(f"{path}: not a readable .safetensors file ({type(e).__name__}: {e})"[:400]) from None


def _safetensors_entries(header, data_bytes: int) -> dict[str, tuple]:
    """``{name: (dtype, start, end, shape)}`` of a parsed safetensors header, each checked."""
    if not isinstance(header, dict):
        raise ValueError(f"the header is a JSON {type(header).__name__}, not an object")
    if len(header) > MAX_TENSORS:
        raise ValueError(f"the header lists {len(header):,} tensors, more than {MAX_TENSORS:,}")
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{name}: entry without a known dtype")
        dtype = _SAFETENSORS_DTYPES[info["dtype"]]
        shape = _ints(info.get("shape"), f"{name}: shape")
        start, end = _ints(info.get("data_offsets"), f"{name}: data_offsets")
        if not start <= end <= data_bytes:
            raise ValueError(f"{name}: data offsets {start}..{end} outside the file")
        if (end - start) != int(np.prod(shape, dtype=object)) * _itemsize(dtype):
            raise ValueError(f"{name}: {end - start} bytes for shape {shape} of {info['dtype']}")
        entries[name] = (dtype, start, end, shape)
    ranges = sorted((start, end, name) for name, (_, start, end, _) in entries.items())
    for (_, end, a), (start, _, b) in zip(ranges, ranges[1:]):
        if start < end:
            raise ValueError(f"the data of {a} and {b} overlap")
    return entries


def _flatten(obj, path: str) -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a.b': array}`` (unwraps ``{'model': ...}`` wrappers), within
    a :class:`~rdrop_paddle.io.Budget` of nodes and :func:`_byte_budget` bytes of arrays."""
    budget, left, out = Budget(path), [_byte_budget(path)], {}

    def visit(node, prefix: str, depth: int) -> None:
        budget.visit(depth)
        if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in ("model", "state_dict"):
            return visit(next(iter(node.values())), prefix, depth + 1)
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                visit(value, f"{name}.", depth + 1)
            elif isinstance(value, np.ndarray):
                left[0] -= value.nbytes
                if left[0] < 0:
                    raise UserInputError(f"{path}: its arrays add up to more than {_byte_budget(path):,} "
                                         f"bytes (shared references?); not a checkpoint")
                out[name] = value

    visit(obj, "", 0)
    return out


def read_npz(path: str) -> dict[str, np.ndarray]:
    """An ``.npz`` archive, read with ``allow_pickle=False``."""
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not an .npz archive (a zip of .npy files)")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip(zf, path)
            other = [n for n in zf.namelist() if not n.endswith(".npy")]
        if not other:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
    except ValueError as e:
        what = "refusing an .npz that needs pickle" if "allow_pickle" in str(e) else "not a readable .npz file"
        raise UserInputError(f"{path}: {what} ({e})"[:400]) from None
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, MemoryError, NotImplementedError,
            RuntimeError) as e:  # RuntimeError: an encrypted member
        raise UserInputError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})"[:400]) from None
    raise UserInputError(f"{path}: member {other[0]!r:.80} is not a .npy array; not an .npz of weights")


def load_checkpoint(path: str) -> dict[str, np.ndarray]:
    """Read a checkpoint file into ``{key: array}`` of numbers, in the file's dtypes."""
    if not os.path.isfile(path):
        raise UserInputError(f"checkpoint not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        state = read_npz(path)
    elif ext == ".safetensors":
        state = read_safetensors(path)
    elif ext in (".pth", ".pt", ".bin", ".ckpt"):
        obj = read_torch_zip(path)
        if not isinstance(obj, dict):
            raise UserInputError(f"{path}: expected a state dict, found {type(obj).__name__}")
        state = _flatten(obj, path)
    elif ext == ".pdparams":
        state = _flatten(load_paddle(path), path)
    else:
        raise UserInputError(f"{path}: unknown checkpoint extension {ext!r} "
                             f"(expected .npz, .safetensors, .pth, .pt, .bin, .pdparams)")
    bad = [f"{k} ({v.dtype})" for k, v in state.items() if v.dtype.kind not in "biuf"]
    if bad:
        raise UserInputError(f"{path}: arrays that are not numbers: {', '.join(bad[:5])}")
    return state
