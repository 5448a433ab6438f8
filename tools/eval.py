"""Evaluate a checkpoint: python tools/eval.py -c CONFIG [-o Model.pretrained=PATH]."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("eval")
