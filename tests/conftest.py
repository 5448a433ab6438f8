"""Test setup: the package (and its CPU environment) is loaded before paddle."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import rdrop_paddle  # noqa: E402,F401  (sets OMP_NUM_THREADS / MKL_DEBUG_CPU_TYPE first)
