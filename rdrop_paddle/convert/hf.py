"""The transformers ``ViTConfig`` of the package ViT: the one reference configuration used by
the x2paddle route, the alignment suite and the benchmark."""
from __future__ import annotations


def vit_config(hidden: int = 768, layers: int = 12, heads: int = 12, image: int = 224, patch: int = 16,
               classes: int = 100, channels: int = 3, mlp: int | None = None, dropout: float = 0.0):
    """``ViTConfig`` matching ``VisionTransformer`` (eager attention, LayerNorm eps 1e-6)."""
    from transformers import ViTConfig

    return ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=mlp or 4 * hidden, image_size=image, patch_size=patch,
                     num_channels=channels, num_labels=classes, layer_norm_eps=1e-6,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=0.0,
                     attn_implementation="eager")
