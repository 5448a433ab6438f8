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

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_paddle, load_pickle

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


class _TorchStorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only remembers the dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """``torch._utils._rebuild_tensor_v2`` over a NumPy storage: a strided view, copied."""
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride))
    return np.array(view)


def read_torch_zip(path: str) -> object:
    """The object a ``torch.save`` zip file holds, tensors as NumPy arrays."""
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path}: not a PyTorch zip file (torch >= 1.6 writes those; re-save "
                             f"the state_dict with a recent torch, or use .safetensors)")
    with zipfile.ZipFile(path) as zf:
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
                raise ValueError(f"bad tensor storage reference {pid!r} ({e})") from None

        extra = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                 ("torch._utils", "_rebuild_parameter"): lambda data, *unused: data}
        extra.update({("torch", name): _TorchStorageType(dtype) for name, dtype in _TORCH_DTYPES.items()})
        return load_pickle(zf.read(pickles[0]), what=path, extra_globals=extra,
                           persistent_load=persistent_load)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + length])
        data, out = raw[8 + length:], {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            if not 0 <= start <= end <= len(data):
                raise ValueError(f"{name}: data offsets {start}..{end} outside the file")
            out[name] = _frombuffer(data[start:end], _SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        return out
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: not a readable .safetensors file ({type(e).__name__}: {e})") from None


def _flatten(obj, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a.b': array}`` (unwraps ``{'model': ...}`` wrappers)."""
    if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("model", "state_dict"):
        return _flatten(next(iter(obj.values())), prefix)
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, np.ndarray):
            out[name] = value
    return out


def load_checkpoint(path: str) -> dict[str, np.ndarray]:
    """Read a checkpoint file into ``{key: float32 array}``."""
    if not os.path.isfile(path):
        raise UserInputError(f"checkpoint not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                state = {k: data[k] for k in data.files}
        except ValueError as e:
            raise UserInputError(f"{path}: refusing an .npz that needs pickle ({e})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise UserInputError(f"{path}: not a readable .npz file ({e})") from None
    elif ext == ".safetensors":
        state = read_safetensors(path)
    elif ext in (".pth", ".pt", ".bin", ".ckpt"):
        obj = read_torch_zip(path)
        if not isinstance(obj, dict):
            raise UserInputError(f"{path}: expected a state dict, found {type(obj).__name__}")
        state = _flatten(obj)
    elif ext == ".pdparams":
        state = _flatten(load_paddle(path))
    else:
        raise UserInputError(f"{path}: unknown checkpoint extension {ext!r} "
                             f"(expected .npz, .safetensors, .pth, .pt, .bin, .pdparams)")
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
