"""Check the Paddle side against PyTorch references, step by step: python tools/align.py --out output/align."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("align")
