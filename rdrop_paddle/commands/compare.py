"""R-Drop vs baseline: ``python tools/compare.py -c configs/quickstart.yaml --seeds 5``.

Trains the config with alpha = 0 (one pass) and with its alpha > 0 for each seed, with the
same budget; prints mean ± std of the final held-out top-1 and NLL and the train-time ratio,
writes every run to ``compare.json`` and draws them.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

from rdrop_paddle.config.load import load_config
from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import write_json


def with_run(cfg: Config, alpha: float, seed: int, output_dir: str) -> Config:
    """``cfg`` for one arm and seed, written to ``output_dir`` (fresh)."""
    if os.path.exists(output_dir):
        raise UserInputError(f"{output_dir} exists; choose another --out")
    return dataclasses.replace(
        cfg, Global=dataclasses.replace(cfg.Global, seed=seed, resume="", output_dir=output_dir),
        Loss=dataclasses.replace(cfg.Loss, alpha=alpha))


def _run(cfg: Config, alpha: float, seed: int, out_dir: str) -> dict:
    from rdrop_paddle.commands.train import train

    run = with_run(cfg, alpha, seed, os.path.join(out_dir, f"alpha{alpha:g}_seed{seed}"))
    start = time.perf_counter()
    result = train(run)
    return {"alpha": alpha, "seed": seed, "top1": result["top1"], "nll": result["loss"],
            "seconds": time.perf_counter() - start}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: list[dict]) -> dict:
    """Per-alpha mean and std of final top-1, NLL and seconds."""
    out = {}
    for alpha in sorted({r["alpha"] for r in runs}):
        rows = [r for r in runs if r["alpha"] == alpha]
        out[alpha] = {k: _mean_std([r[k] for r in rows]) for k in ("top1", "nll", "seconds")}
        out[alpha]["n"] = len(rows)
    return out


def format_table(summary: dict) -> str:
    base = summary[min(summary)]["seconds"][0]
    lines = ["| alpha | runs | top-1 (%) | NLL | train time | time ratio |",
             "| --- | --- | --- | --- | --- | --- |"]
    for alpha, s in summary.items():
        lines.append(f"| {alpha:g} | {s['n']} | {s['top1'][0]:.2f} ± {s['top1'][1]:.2f} | "
                     f"{s['nll'][0]:.4f} ± {s['nll'][1]:.4f} | {s['seconds'][0]:.0f} s | "
                     f"{s['seconds'][0] / base:.2f} |")
    return "\n".join(lines)


def compare(cfg: Config, seeds: int, out_dir: str, image: str | None) -> dict:
    """Train baseline (alpha 0) and R-Drop (``cfg.Loss.alpha``) for ``seeds`` seeds each."""
    if cfg.Loss.alpha <= 0:
        raise UserInputError("the config's Loss.alpha must be > 0: it is the R-Drop arm")
    if seeds < 1:
        raise UserInputError(f"--seeds must be at least 1, got {seeds}")
    runs = [_run(cfg, alpha, cfg.Global.seed + i, out_dir)
            for i in range(seeds) for alpha in (0.0, cfg.Loss.alpha)]
    summary = summarize(runs)
    table = format_table(summary)
    write_json({"runs": runs, "table": table}, os.path.join(out_dir, "compare.json"))
    if image:
        from rdrop_paddle.utils.plots import plot_comparison

        plot_comparison(runs, image)
    print(table)
    return {"runs": runs, "summary": summary, "table": table}


def run(args) -> None:
    compare(load_config(args.config, args.override), args.seeds, args.out, args.image)
