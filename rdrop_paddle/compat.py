"""The PaddlePaddle versions this package supports: 2.6 (what PyPI's ``paddlepaddle-gpu``
installs) and 3.x.  Checked where paddle is first needed, with one clear line otherwise."""
from __future__ import annotations

import re

SUPPORTED = "PaddlePaddle 2.6 or >= 3.0"


def supported(version: str) -> bool:
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2))
    return (major, minor) == (2, 6) or major >= 3 or (major, minor) == (0, 0)  # 0.0.0: develop builds


def check_paddle() -> str:
    """Import paddle and return its version; ImportError naming the version if unsupported.

    Python's ``zlib`` is loaded first: Paddle 2.6's CPU wheel exports zlib symbols of its
    own, and once it is loaded ahead of Python's module, reading any gzip file (the digits
    data set) crashes in ``inflateReset2``.
    """
    import zlib  # noqa: F401  (before paddle, see above)

    try:
        import paddle
    except ImportError:
        raise ImportError(f"rdrop_paddle needs {SUPPORTED}: pip install paddlepaddle (CPU) or "
                          f"paddlepaddle-gpu (README, Install)") from None
    if not supported(paddle.__version__):
        raise ImportError(f"rdrop_paddle needs {SUPPORTED}; found paddle {paddle.__version__}")
    return paddle.__version__
