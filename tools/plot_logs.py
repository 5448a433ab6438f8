"""Draw training curves from VisualDL records: python tools/plot_logs.py --logdir output/quickstart."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("plot_logs")
