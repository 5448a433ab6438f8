"""Layer-wise learning-rate decay (BEiT, Bao et al., 2022; MAE's ``lr_decay.py``; timm).

A ViT with ``N`` blocks has ``L = N + 1`` layers: the patch embedding, ``cls_token`` and
``pos_embed`` are layer 0, block ``i`` is layer ``i + 1``, the final norm and the head are
layer ``L``.  A parameter of layer ``l`` learns at ``lr * decay^(L - l)`` (the schedule's
lr times that factor): the head at the full rate, the embedding at ``decay^L`` of it.
"""
from __future__ import annotations

import paddle


def layer_id(name: str, num_layers: int) -> int:
    """The layer of parameter ``name`` in a model with ``num_layers = blocks + 1``."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def lr_scales(model: paddle.nn.Layer, decay: float) -> dict[str, float]:
    """``{parameter name: lr factor}`` for every parameter of a ViT ``model``."""
    num_layers = len(model.blocks) + 1
    return {name: decay ** (num_layers - layer_id(name, num_layers)) for name, _ in model.named_parameters()}


def param_groups(model: paddle.nn.Layer, decay: float, decayed: set[str], weight_decay) -> list[dict]:
    """Parameter groups of Paddle's optimizers: one per (lr factor, decayed or not), with the
    factor as the group's ``learning_rate`` (Paddle multiplies the scheduled lr by it) and
    ``weight_decay`` for parameters named in ``decayed`` (Paddle ``Parameter.name``s), 0 else."""
    scales = lr_scales(model, decay)
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        key = (scales[name], p.name in decayed)
        group = groups.setdefault(key, {"params": [], "learning_rate": key[0],
                                        "weight_decay": weight_decay if key[1] else 0.0})
        group["params"].append(p)
    return list(groups.values())
