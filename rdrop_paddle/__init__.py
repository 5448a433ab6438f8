"""rdrop_paddle: R-Drop (Liang et al., NeurIPS 2021) for PaddlePaddle.

Importing this package before ``paddle`` sets the CPU threading environment
(see :mod:`rdrop_paddle.runtime`); the user's own values always win.
"""
from rdrop_paddle.runtime import configure_cpu_env

configure_cpu_env()

__version__ = "0.1.0"
