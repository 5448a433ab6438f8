"""ViT models and their registry; BERT/ERNIE text classifiers and ``from_pretrained``."""
from rdrop_paddle.compat import check_paddle

check_paddle()

from rdrop_paddle.models.registry import MODELS, build_model  # noqa: E402
from rdrop_paddle.models.vit import VisionTransformer, interpolate_pos_embed  # noqa: E402
from rdrop_paddle.models.bert import TextClassifier  # noqa: E402
from rdrop_paddle.models.pretrained import from_pretrained  # noqa: E402

__all__ = ["MODELS", "build_model", "VisionTransformer", "interpolate_pos_embed", "TextClassifier", "from_pretrained"]
