"""R-Drop losses."""
from rdrop_paddle.compat import check_paddle

check_paddle()

from rdrop_paddle.losses.rdrop import RDropCrossEntropy, RDropLoss, cross_entropy, log_softmax  # noqa: E402
from rdrop_paddle.losses.regression import RDropMSE, mse  # noqa: E402
from rdrop_paddle.losses.two_pass import rdrop_forward, two_pass  # noqa: E402

__all__ = ["RDropLoss", "RDropCrossEntropy", "RDropMSE", "mse", "cross_entropy", "log_softmax", "two_pass", "rdrop_forward"]
