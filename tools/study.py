"""Low-data study of R-Drop with paired seeds: python tools/study.py -c configs/quickstart.yaml."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("study")
