"""R-Drop vs baseline on one config: ``python tools/compare.py -c configs/quickstart.yaml --seeds 5``.

Trains alpha = 0 and the config's alpha for each seed with the same budget, prints a table
(mean ± std of held-out top-1 and NLL, train-time ratio) and draws the runs.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)
from rdrop_paddle.cli import config_parser, run  # noqa: E402
from rdrop_paddle.config import load_config  # noqa: E402
from rdrop_paddle.engine.compare import compare  # noqa: E402

if __name__ == "__main__":
    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="output/compare")
    parser.add_argument("--image", default="images/rdrop_vs_baseline.png")
    args = parser.parse_args()
    run(lambda: compare(load_config(args.config, args.override), args.seeds, args.out, args.image))
