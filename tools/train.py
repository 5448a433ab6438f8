"""Train a model: python tools/train.py -c configs/quickstart.yaml [-o Section.key=value ...].

Multi-card: python -m paddle.distributed.launch --nproc_per_node N tools/train.py -c ...
"""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("train")
