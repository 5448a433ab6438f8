"""Reading checkpoint files without executing code from them.

``.npz`` is read with ``allow_pickle=False``; ``.safetensors`` with the safetensors
library; PyTorch files (``.pth``, ``.pt``, ``.bin``) with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers.
"""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.errors import UserInputError


def _flatten(obj, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of tensors -> ``{'a.b': array}`` (unwraps ``{'model': ...}`` wrappers)."""
    if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("model", "state_dict"):
        return _flatten(next(iter(obj.values())), prefix)
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif hasattr(value, "detach"):
            out[name] = value.detach().cpu().float().numpy()
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
                return {k: data[k].astype(np.float32) for k in data.files}
        except ValueError as e:
            raise UserInputError(f"{path}: refusing an .npz that needs pickle ({e})") from None
    if ext == ".safetensors":
        from safetensors.numpy import load_file

        return {k: v.astype(np.float32) for k, v in load_file(path).items()}
    if ext in (".pth", ".pt", ".bin", ".ckpt"):
        try:
            import torch
        except ImportError:
            raise UserInputError(f"{path}: reading PyTorch files needs torch "
                                 f"(pip install torch), or convert it to .safetensors") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # UnpicklingError and friends
            raise UserInputError(
                f"{path}: not a plain-tensor PyTorch file (weights_only=True refused it: "
                f"{str(e).splitlines()[0]}); re-save its state_dict or use .safetensors") from None
        if not isinstance(obj, dict):
            raise UserInputError(f"{path}: expected a state dict, found {type(obj).__name__}")
        return _flatten(obj)
    raise UserInputError(f"{path}: unknown checkpoint extension {ext!r} "
                         f"(expected .npz, .safetensors, .pth, .pt, .bin)")
