"""Alignment against PyTorch references (needs torch and transformers; see tools/align.py)."""
