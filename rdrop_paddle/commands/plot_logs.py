"""Draw training curves from VisualDL records: ``python tools/plot_logs.py --logdir output/quickstart``."""
from __future__ import annotations

import os


def run(args) -> None:
    from rdrop_paddle.utils.plots import plot_curves

    plot_curves(args.logdir, args.out or os.path.join(args.logdir, "curves.png"))
