"""PyTorch, JAX and PaddleClas ViT checkpoints -> the package ViT (``tools/convert_weights.py``)."""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.convert.convert import convert_state_dict
from rdrop_paddle.convert.formats import FORMATS, detect_format, to_canonical
from rdrop_paddle.convert.readers import load_checkpoint
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import as_weights

__all__ = ["FORMATS", "convert_checkpoint", "convert_state_dict", "detect_format",
           "load_checkpoint", "save_state", "target_shapes", "to_canonical"]


def _lazy_model(model: str, **kwargs):
    import paddle

    from rdrop_paddle.models import build_model

    try:
        with paddle.LazyGuard():  # shapes only: no weights are initialised
            return build_model(model, **kwargs)
    except ValueError as e:
        raise UserInputError(f"{model}: {e}") from None


def target_shapes(model: str, num_classes: int, image_size: int | None = None) -> dict[str, tuple]:
    """Parameter shapes of ``build_model(model, ...)``, without initialising its weights."""
    if num_classes < 1:
        raise UserInputError(f"--num-classes must be at least 1, got {num_classes}")
    kwargs = {"num_classes": num_classes} | ({"image_size": image_size} if image_size is not None else {})
    net = _lazy_model(model, **kwargs)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def num_heads_of(model: str) -> int:
    """Attention heads of a registered variant (checkpoints do not record it)."""
    return _lazy_model(model).blocks[0].attn.num_heads


def convert_checkpoint(src: str, fmt: str, model: str, num_classes: int,
                       image_size: int | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read ``src`` and convert it for ``build_model(model, num_classes, image_size)``."""
    target = target_shapes(model, num_classes, image_size)
    source = load_checkpoint(src)  # float32 weights; integer buffers (HF's position_ids) as they are
    source, cast = as_weights(source, {k: np.float32 for k, v in source.items() if v.dtype.kind == "f"}, src)
    if fmt == "x2paddle":
        from rdrop_paddle.convert.x2paddle_route import x2paddle_state_dict

        source, fmt = x2paddle_state_dict(source, detect_format(source, src), num_heads_of(model)), "hf"
    elif fmt == "auto":
        fmt = detect_format(source, src)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}; valid: auto, {', '.join(FORMATS)}, x2paddle")
    state, notices = convert_state_dict(source, fmt, target)  # refuses non-float arrays it maps
    return state, ([cast] if cast else []) + notices


def save_state(state: dict[str, np.ndarray], out: str) -> None:
    """Write a ``.pdparams`` atomically; an existing file is replaced only on success."""
    import paddle

    from rdrop_paddle.io import save_paddle

    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UserInputError(f"cannot create {folder}: {e.strerror or e}") from None
    save_paddle({k: paddle.to_tensor(v) for k, v in state.items()}, out)
