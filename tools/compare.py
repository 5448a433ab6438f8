"""R-Drop vs baseline on one config over seeds: python tools/compare.py -c configs/quickstart.yaml --seeds 5."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("compare")
