"""rdrop_paddle: R-Drop (Liang et al., NeurIPS 2021) for PaddlePaddle.

Importing the package has no side effects and does not import paddle; the names below
load on first use.  On CPU, call :func:`rdrop_paddle.cpu.configure` before ``import paddle``
(the tools do this themselves).
"""
import importlib

__version__ = "0.7.0"

_LAZY = {"RDropLoss": "rdrop_paddle.losses", "RDropCrossEntropy": "rdrop_paddle.losses",
         "RDropMSE": "rdrop_paddle.losses", "two_pass": "rdrop_paddle.losses", "rdrop_forward": "rdrop_paddle.losses",
         "build_model": "rdrop_paddle.models",
         "from_pretrained": "rdrop_paddle.convert.by_name"}  # a converted folder or an hf-hub: name


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rdrop_paddle' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
