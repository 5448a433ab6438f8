"""ViT models and their registry."""
from rdrop_paddle.models.registry import MODELS, build_model
from rdrop_paddle.models.vit import VisionTransformer, interpolate_pos_embed

__all__ = ["MODELS", "build_model", "VisionTransformer", "interpolate_pos_embed"]
