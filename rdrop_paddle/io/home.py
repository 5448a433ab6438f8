"""The data home: where downloads and converted weights are kept."""
from __future__ import annotations

import os


def data_home() -> str:
    """``$RDROP_DATA_HOME``, else ``~/.cache/rdrop_paddle``."""
    return os.environ.get("RDROP_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "rdrop_paddle")
