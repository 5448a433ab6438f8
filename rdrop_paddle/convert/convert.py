"""Canonical state dict -> the package ViT's Paddle state dict, with fine-tuning semantics.

``convert_state_dict`` is a pure function of NumPy arrays (timm's
``checkpoint_filter_fn`` in spirit): it renames, transposes Linear weights to
Paddle's ``[in, out]``, drops ``pre_logits``, re-initialises the head when the
class count differs (zeros, as the official code's ``zero_head``) and resizes
position embeddings to the target grid (:func:`interpolate_pos_embed`).  Whatever
it changed is returned as notices; whatever still does not fit the target is an
error listing the keys and shapes.
"""
from __future__ import annotations

import math
import re

import numpy as np

from rdrop_paddle.convert.formats import to_canonical
from rdrop_paddle.io import as_weights, check_fits
from rdrop_paddle.models.vit import interpolate_pos_embed

_LINEAR = re.compile(r"(blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)|head)\.weight")


def canonical_to_paddle(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Transpose Linear weights ``[out, in] -> [in, out]``; everything else is unchanged."""
    return {k: (np.ascontiguousarray(v.T) if _LINEAR.fullmatch(k) else v) for k, v in state.items()}


def adapt_to_target(state: dict[str, np.ndarray], target: dict[str, tuple]) -> tuple[dict, list[str]]:
    """Fit a Paddle-layout state dict to ``target`` (key -> shape) for fine-tuning."""
    state, notices = dict(state), []
    dropped = sorted(k for k in state if k.startswith("pre_logits."))
    if dropped:
        notices.append(f"dropped the pre-logits layer ({', '.join(dropped)}) as the official "
                       f"fine-tuning code does")
        for k in dropped:
            del state[k]
    head_w, head_b = state.get("head.weight"), state.get("head.bias")
    if head_w is not None and "head.weight" in target and head_w.shape != tuple(target["head.weight"]):
        notices.append(f"head re-initialised to zeros: checkpoint has {head_w.shape[1]} classes, "
                       f"the model {target['head.weight'][1]}")
        state["head.weight"] = np.zeros(target["head.weight"], dtype=head_w.dtype)
        if head_b is not None:
            state["head.bias"] = np.zeros(target["head.bias"], dtype=head_b.dtype)
    pos = state.get("pos_embed")
    if pos is not None and "pos_embed" in target and pos.shape != tuple(target["pos_embed"]):
        new_grid = math.isqrt(target["pos_embed"][1] - 1)
        old_grid = math.isqrt(pos.shape[1] - 1)
        if pos.shape[-1] == target["pos_embed"][-1] and old_grid ** 2 == pos.shape[1] - 1:
            state["pos_embed"] = interpolate_pos_embed(pos, new_grid).astype(pos.dtype)
            notices.append(f"position embeddings resized from a {old_grid}x{old_grid} to a "
                           f"{new_grid}x{new_grid} grid (bilinear zoom)")
    return state, notices


def convert_state_dict(source: dict[str, np.ndarray], fmt: str,
                       target: dict[str, tuple]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Source checkpoint (``fmt``) -> Paddle state dict fitting ``target``, plus notices."""
    state = canonical_to_paddle(to_canonical(source, fmt))
    state, notices = adapt_to_target(state, target)
    check_fits({k: v.shape for k, v in state.items()}, target, "checkpoint")
    return as_weights(state, dict.fromkeys(state, np.float32), "checkpoint")[0], notices
