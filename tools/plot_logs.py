"""Draw training curves from VisualDL records: ``python tools/plot_logs.py --logdir output/quickstart``."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rdrop_paddle.cli import run  # noqa: E402
from rdrop_paddle.utils.plots import plot_curves  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", required=True, help="a run's output_dir (or its vdl folder)")
    parser.add_argument("--out", default=None, help="PNG path (default: LOGDIR/curves.png)")
    args = parser.parse_args()
    run(lambda: plot_curves(args.logdir, args.out or os.path.join(args.logdir, "curves.png")))
