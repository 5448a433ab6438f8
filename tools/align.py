"""Check the Paddle ViT, loss, optimizer, LR schedule and metric against PyTorch.

    python tools/align.py [--out output/align] [--steps forward,loss,backward,lr,metric]

Needs torch and transformers (``pip install -r tests/requirements.txt``). Writes
reprod_log files and diff reports under ``--out``; prints one table; exits 1 on a failure.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)
from rdrop_paddle.errors import UserInputError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="output/align")
    p.add_argument("--steps", default="forward,loss,backward,lr,metric")
    args = p.parse_args(argv)
    try:
        from rdrop_paddle.alignment.steps import STEPS, format_table
    except ImportError as e:
        raise UserInputError(f"alignment needs {e.name}: pip install -r tests/requirements.txt")
    names = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        raise UserInputError(f"unknown step(s) {', '.join(unknown)}; valid: {', '.join(STEPS)}")
    os.makedirs(args.out, exist_ok=True)
    results = []
    for name in names:
        results.append(STEPS[name](args.out))
        print(f"{name}: {'pass' if results[-1].passed else 'FAIL'}", file=sys.stderr, flush=True)
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
