"""Check the Paddle side against PyTorch references, step by step (the reproduction guide's
alignment): ``python tools/align.py [--out output/align] [--steps forward,loss,...]``.

Needs torch and transformers (``pip install -r tests/requirements.txt``).  Writes
reprod_log files and diff reports under ``--out``, prints one table, exits 1 on a failure.
"""
from __future__ import annotations

import functools
import os
import sys

from rdrop_paddle.commands.arguments import ALIGN_STEPS
from rdrop_paddle.errors import UserInputError



def steps(plot: str | None) -> dict:
    try:
        from rdrop_paddle.alignment import pipeline, steps as model_steps, text
    except ImportError as e:
        raise UserInputError(f"alignment needs {e.name}: pip install -r tests/requirements.txt") from None
    return {"forward": model_steps.forward, "dropout_sites": model_steps.dropout_sites,
            "loss": model_steps.loss, "backward": model_steps.backward, "lr": model_steps.lr_schedule,
            "metric": model_steps.metric, "data": pipeline.data,
            "train": functools.partial(pipeline.train, plot=plot), "inference": pipeline.inference,
            "text_tokenizer": text.tokenizer, "text_forward": text.forward, "text_loss": text.loss,
            "text_train": text.train}


def run(args) -> int:
    names = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in names if s not in ALIGN_STEPS]
    if unknown:
        raise UserInputError(f"unknown step(s) {', '.join(unknown)}; valid: {', '.join(ALIGN_STEPS)}")
    table = steps(args.plot)
    os.makedirs(args.out, exist_ok=True)
    from rdrop_paddle.alignment.report import format_table

    results = []
    for name in names:
        results.append(table[name](args.out))
        print(f"{name}: {'pass' if results[-1].passed else 'FAIL'}", file=sys.stderr, flush=True)
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1
