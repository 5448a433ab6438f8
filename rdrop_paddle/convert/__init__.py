"""PyTorch/JAX ViT checkpoints -> the package ViT (``tools/convert_weights.py``)."""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.convert.convert import convert_state_dict
from rdrop_paddle.convert.formats import FORMATS, detect_format, to_canonical
from rdrop_paddle.convert.sources import load_checkpoint
from rdrop_paddle.errors import UserInputError

__all__ = ["FORMATS", "convert_checkpoint", "convert_state_dict", "detect_format",
           "load_checkpoint", "save_state", "target_shapes", "to_canonical"]


def target_shapes(model: str, num_classes: int, image_size: int | None = None) -> dict[str, tuple]:
    """Parameter shapes of ``build_model(model, ...)``, without initialising its weights."""
    import paddle

    from rdrop_paddle.models import build_model

    kwargs = {"num_classes": num_classes} | ({"image_size": image_size} if image_size else {})
    with paddle.LazyGuard():
        net = build_model(model, **kwargs)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def convert_checkpoint(src: str, fmt: str, model: str, num_classes: int,
                       image_size: int | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read ``src`` and convert it for ``build_model(model, num_classes, image_size)``."""
    target = target_shapes(model, num_classes, image_size)
    if fmt == "x2paddle":
        from rdrop_paddle.convert.x2paddle_route import x2paddle_state_dict

        source, fmt = x2paddle_state_dict(load_checkpoint(src), num_heads_of(model)), "hf"
    else:
        source = load_checkpoint(src)
        if fmt == "auto":
            fmt = detect_format(source)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}; valid: auto, {', '.join(FORMATS)}, x2paddle")
    return convert_state_dict(source, fmt, target)


def num_heads_of(model: str) -> int:
    """Attention heads of a registered variant (checkpoints do not record it)."""
    import paddle

    from rdrop_paddle.models import build_model

    with paddle.LazyGuard():
        return build_model(model).blocks[0].attn.num_heads


def save_state(state: dict[str, np.ndarray], out: str) -> None:
    """Write a ``.pdparams`` atomically; an existing file is replaced only on success."""
    import paddle

    from rdrop_paddle.engine.checkpoint import save_atomic

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_atomic({k: paddle.to_tensor(v) for k, v in state.items()}, out)
