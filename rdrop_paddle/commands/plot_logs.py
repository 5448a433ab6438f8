"""Draw training curves from VisualDL records: ``python tools/plot_logs.py --logdir output/quickstart``."""
from __future__ import annotations

import argparse
import os


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", required=True, help="a run's output_dir (or its vdl folder)")
    parser.add_argument("--out", default=None, help="PNG path (default: LOGDIR/curves.png)")
    return parser


def run(args) -> None:
    from rdrop_paddle.utils.plots import plot_curves

    plot_curves(args.logdir, args.out or os.path.join(args.logdir, "curves.png"))
