"""Named model variants and ``build_model``: a plain dict, no ``eval``."""
from __future__ import annotations

from typing import Callable

from rdrop_paddle.cpu.process import notice_unconfigured
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.models.vit import VisionTransformer

_SIZES = {  # embed_dim, depth, num_heads (Dosovitskiy et al.; Touvron et al. for Ti/S)
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}

MODELS: dict[str, Callable[..., VisionTransformer]] = {}


def register(fn: Callable[..., VisionTransformer]) -> Callable[..., VisionTransformer]:
    MODELS[fn.__name__] = fn
    return fn


def _vit(size: str, patch_size: int, default_image_size: int, **kwargs) -> VisionTransformer:
    embed_dim, depth, num_heads = _SIZES[size]
    kwargs.setdefault("image_size", default_image_size)
    return VisionTransformer(patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                             num_heads=num_heads, **kwargs)


@register
def vit_tiny_patch16_224(**kwargs) -> VisionTransformer:
    return _vit("tiny", 16, 224, **kwargs)


@register
def vit_tiny_patch16_384(**kwargs) -> VisionTransformer:
    return _vit("tiny", 16, 384, **kwargs)


@register
def vit_small_patch16_224(**kwargs) -> VisionTransformer:
    return _vit("small", 16, 224, **kwargs)


@register
def vit_small_patch16_384(**kwargs) -> VisionTransformer:
    return _vit("small", 16, 384, **kwargs)


@register
def vit_base_patch16_224(**kwargs) -> VisionTransformer:
    return _vit("base", 16, 224, **kwargs)


@register
def vit_base_patch16_384(**kwargs) -> VisionTransformer:
    return _vit("base", 16, 384, **kwargs)


@register
def vit_large_patch16_224(**kwargs) -> VisionTransformer:
    return _vit("large", 16, 224, **kwargs)


@register
def vit_large_patch16_384(**kwargs) -> VisionTransformer:
    return _vit("large", 16, 384, **kwargs)


@register
def vit_nano_patch4_8(**kwargs) -> VisionTransformer:
    """The quickstart model: 8x8 grey-scale digits, 4x4 patches, 4 blocks of width 64."""
    kwargs.setdefault("image_size", 8)
    kwargs.setdefault("in_chans", 1)
    kwargs.setdefault("num_classes", 10)
    return VisionTransformer(patch_size=4, embed_dim=64, depth=4, num_heads=4, **kwargs)


def dims(name: str) -> tuple[int, int, int]:
    """``(embed_dim, depth, num_heads)`` of a ``vit_{tiny,small,base,large}_*`` variant."""
    return _SIZES[name.split("_")[1]]


def build_model(name: str, **kwargs) -> VisionTransformer:
    """Build a registered variant; keyword arguments go to :class:`VisionTransformer`."""
    if name not in MODELS:
        raise UserInputError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    notice_unconfigured()
    return MODELS[name](**kwargs)
