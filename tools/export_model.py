"""Export the eval-mode model for Paddle Inference: python tools/export_model.py -c CONFIG --out DIR."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("export")
