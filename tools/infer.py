"""Predict images with an exported model: python tools/infer.py --model-dir DIR --images PATH [PATH ...]."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("infer")
