"""Evaluate a checkpoint: ``python tools/eval.py -c CONFIG [-o Model.pretrained=PATH]``.

Without ``Model.pretrained`` it evaluates ``Global.output_dir/best.pdparams``; the last
line printed is ``top1 X top5 Y`` and ``Global.output_dir/metrics.json`` is written.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)
from rdrop_paddle.cli import config_main  # noqa: E402
from rdrop_paddle.engine.evaluate_checkpoint import evaluate_checkpoint  # noqa: E402

if __name__ == "__main__":
    config_main("Evaluate a checkpoint (top-1 / top-5).", evaluate_checkpoint)
