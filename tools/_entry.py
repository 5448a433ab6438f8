"""Shared start of the tools: finds rdrop_paddle in a checkout where it is not installed
(``pip install -e .`` makes that a no-op), then installs our SIGINT/SIGTERM handler before
anything else is imported."""
import importlib.util
import os
import sys

if importlib.util.find_spec("rdrop_paddle") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rdrop_paddle.utils import signals  # noqa: E402  (stdlib only)

signals.install()
