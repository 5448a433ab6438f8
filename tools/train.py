"""Train a model: ``python tools/train.py -c configs/quickstart.yaml [-o Section.key=value ...]``.

Multi-card: ``python -m paddle.distributed.launch --nproc_per_node N tools/train.py -c ...``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)
from rdrop_paddle.cli import config_main  # noqa: E402
from rdrop_paddle.engine.trainer import train  # noqa: E402

if __name__ == "__main__":
    config_main("Train a ViT with R-Drop.", train)
