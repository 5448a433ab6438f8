"""Lets ``python benchmarks/X.py`` run from a checkout where rdrop_paddle is not installed."""
import importlib.util
import os
import sys

if importlib.util.find_spec("rdrop_paddle") is None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
