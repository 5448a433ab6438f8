"""R-Drop losses."""
from rdrop_paddle.losses.rdrop import RDropCrossEntropy, RDropLoss

__all__ = ["RDropLoss", "RDropCrossEntropy"]
