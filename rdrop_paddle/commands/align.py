"""Check the Paddle side against PyTorch references, step by step (the reproduction guide's
alignment): ``python tools/align.py [--out output/align] [--steps forward,loss,...]``.

Needs torch and transformers (``pip install -r tests/requirements.txt``).  Writes
reprod_log files and diff reports under ``--out``, prints one table, exits 1 on a failure.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

from rdrop_paddle.errors import UserInputError

STEP_NAMES = ("forward", "dropout_sites", "loss", "backward", "lr", "metric", "data", "train", "inference")


def steps(plot: str | None) -> dict:
    try:
        from rdrop_paddle.alignment import pipeline, steps as model_steps
    except ImportError as e:
        raise UserInputError(f"alignment needs {e.name}: pip install -r tests/requirements.txt") from None
    return {"forward": model_steps.forward, "dropout_sites": model_steps.dropout_sites,
            "loss": model_steps.loss, "backward": model_steps.backward, "lr": model_steps.lr_schedule,
            "metric": model_steps.metric, "data": pipeline.data,
            "train": functools.partial(pipeline.train, plot=plot), "inference": pipeline.inference}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="output/align")
    p.add_argument("--steps", default=",".join(STEP_NAMES))
    p.add_argument("--plot", default=None, help="PNG of the train step's two loss curves")
    return p


def run(args) -> int:
    names = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEP_NAMES]
    if unknown:
        raise UserInputError(f"unknown step(s) {', '.join(unknown)}; valid: {', '.join(STEP_NAMES)}")
    table = steps(args.plot)
    os.makedirs(args.out, exist_ok=True)
    from rdrop_paddle.alignment.report import format_table

    results = []
    for name in names:
        results.append(table[name](args.out))
        print(f"{name}: {'pass' if results[-1].passed else 'FAIL'}", file=sys.stderr, flush=True)
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1
