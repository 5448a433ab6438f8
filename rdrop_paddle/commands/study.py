"""Where should R-Drop help?  A low-data study with paired seeds.

    python tools/study.py -c configs/quickstart.yaml [--fractions 0.1,0.25,0.5,1] [--seeds 5]

For each fraction of the training split and each seed, the baseline (alpha 0) and R-Drop
are trained with the same steps and batch, from the same initial weights, on the same
subset in the same order (everything derives from the seed).  Reported per fraction: the
mean paired difference (R-Drop - baseline) of final held-out top-1 and NLL with a 95 %
t-interval, and per arm the consistency measures of
:mod:`rdrop_paddle.engine.consistency`.  Alpha is chosen first, on a validation split
carved from the training subset (never the held-out split), from ``--alphas``.
"""
from __future__ import annotations

import hashlib
import os
import statistics

import numpy as np

from rdrop_paddle.commands.compare import with_run
from rdrop_paddle.config.load import load_config
from rdrop_paddle.config.schema import Config
from rdrop_paddle.data import ImageDataset, build_datasets
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import write_json


def subset(train: ImageDataset, fraction: float, seed: int) -> tuple[ImageDataset, str]:
    """The first ``fraction`` of a seed-drawn permutation of ``train``, and its digest."""
    n = max(1, int(round(len(train) * fraction)))
    index = np.sort(np.random.default_rng([seed, 3]).permutation(len(train))[:n])
    part = ImageDataset(train.images[index], train.labels[index], train.transform, train.class_names)
    return part, hashlib.sha256(index.tobytes()).hexdigest()[:16]


def carve(train: ImageDataset, fraction: float = 0.25) -> tuple[ImageDataset, ImageDataset]:
    """Split a training set into (train, validation) for choosing alpha."""
    n_val = max(1, int(round(len(train) * fraction)))
    cut = len(train) - n_val
    return tuple(ImageDataset(train.images[s], train.labels[s], train.transform, train.class_names)
                 for s in (slice(0, cut), slice(cut, None)))


def _fit(cfg: Config, alpha: float, seed: int, out: str, data: tuple, consistency: bool) -> dict:
    from rdrop_paddle.commands.model import load_weights
    from rdrop_paddle.commands.train import train
    from rdrop_paddle.engine.consistency import dropout_consistency
    from rdrop_paddle.engine.evaluate import eval_loader
    from rdrop_paddle.tasks import task_of

    run_cfg = with_run(cfg, alpha, seed, out)
    result = train(run_cfg, datasets=data)
    row = {"alpha": alpha, "seed": seed, "top1": result["top1"], "nll": result["loss"],
           "init": result["init_digest"]}
    if consistency:
        model = task_of(cfg).model(cfg)
        load_weights(model, os.path.join(result["checkpoint"], "model.pdparams"))
        row.update(dropout_consistency(model, eval_loader(data[1], cfg.Data.eval_batch_size), seed=seed))
    return row


def paired(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of paired differences and its 95 % t-interval."""
    from scipy import stats

    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def summarize(runs: list[dict], fractions: list[float]) -> list[dict]:
    rows = []
    for f in fractions:
        cell = [r for r in runs if r["fraction"] == f]
        base = {r["seed"]: r for r in cell if r["alpha"] == 0}
        rd = {r["seed"]: r for r in cell if r["alpha"] > 0}
        seeds = sorted(base.keys() & rd.keys())
        row = {"fraction": f, "n": len(seeds), "train_images": cell[0]["train_images"]}
        for key in ("top1", "nll"):
            row[key] = paired([rd[s][key] - base[s][key] for s in seeds])
            row[f"{key}_base"] = statistics.fmean(base[s][key] for s in seeds)
            row[f"{key}_rdrop"] = statistics.fmean(rd[s][key] for s in seeds)
        for key in ("kl", "gap"):
            row[f"{key}_base"] = statistics.fmean(base[s][key] for s in seeds)
            row[f"{key}_rdrop"] = statistics.fmean(rd[s][key] for s in seeds)
        rows.append(row)
    return rows


def format_table(rows: list[dict], alpha: float) -> str:
    ci = lambda m, lo, hi: f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"  # noqa: E731
    ci4 = lambda m, lo, hi: f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"  # noqa: E731
    lines = [f"| fraction (images) | seeds | top-1 base / R-Drop (alpha {alpha:g}) | Δ top-1 [95% CI] | "
             f"NLL base / R-Drop | Δ NLL [95% CI] | KL of two dropout passes base / R-Drop | "
             f"dropout-on − off top-1 base / R-Drop |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['fraction']:g} ({r['train_images']}) | {r['n']} | {r['top1_base']:.2f} / "
                     f"{r['top1_rdrop']:.2f} | {ci(*r['top1'])} | {r['nll_base']:.4f} / {r['nll_rdrop']:.4f} | "
                     f"{ci4(*r['nll'])} | {r['kl_base']:.4f} / {r['kl_rdrop']:.4f} | "
                     f"{r['gap_base']:+.2f} / {r['gap_rdrop']:+.2f} |")
    return "\n".join(lines)


def choose_alpha(cfg: Config, train: ImageDataset, alphas: list[float], fraction: float,
                 seeds: list[int], out: str) -> tuple[float, list[dict]]:
    """The alpha with the best mean validation top-1 (then NLL) on carved validation splits."""
    grid = []
    for seed in seeds:
        data = carve(subset(train, fraction, seed)[0])
        for alpha in alphas:
            row = _fit(cfg, alpha, seed, os.path.join(out, "alpha_grid", f"alpha{alpha:g}_seed{seed}"),
                       data, consistency=False)
            grid.append(row)
            print(f"grid alpha {alpha:g} seed {seed}: validation top1 {row['top1']:.2f} nll {row['nll']:.4f}",
                  flush=True)
    score = {a: (statistics.fmean(r["top1"] for r in grid if r["alpha"] == a),
                 -statistics.fmean(r["nll"] for r in grid if r["alpha"] == a)) for a in alphas}
    return max(alphas, key=lambda a: score[a]), grid


def study(cfg: Config, fractions: list[float], seeds: int, alphas: list[float], out: str,
          image: str | None) -> dict:
    if seeds < 2 or not fractions or not alphas or any(not 0 < f <= 1 for f in fractions) \
            or any(not a > 0 for a in alphas):
        raise UserInputError("need --seeds >= 2, fractions in (0, 1] and alphas > 0")
    train, val = build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes)
    seed_list = [cfg.Global.seed + i for i in range(seeds)]
    alpha, grid = choose_alpha(cfg, train, alphas, sorted(fractions)[len(fractions) // 2],
                               seed_list[:2], out)
    print(f"chosen alpha {alpha:g}", flush=True)
    runs = []
    for f in fractions:
        for seed in seed_list:
            part, digest = subset(train, f, seed)
            for a in (0.0, alpha):
                row = _fit(cfg, a, seed, os.path.join(out, f"fraction{f:g}", f"alpha{a:g}_seed{seed}"),
                           (part, val), consistency=True)
                runs.append({**row, "fraction": f, "train_images": len(part), "subset": digest})
                print(f"fraction {f:g} seed {seed} alpha {a:g}: top1 {row['top1']:.2f} nll {row['nll']:.4f}",
                      flush=True)
    rows = summarize(runs, fractions)
    table = format_table(rows, alpha)
    write_json({"alpha": alpha, "grid": grid, "runs": runs, "summary": rows, "table": table},
               os.path.join(out, "study.json"))
    if image:
        from rdrop_paddle.utils.plots import plot_study

        plot_study(rows, alpha, image)
    print(table)
    return {"alpha": alpha, "grid": grid, "runs": runs, "summary": rows}


def run(args) -> None:
    try:
        fractions = [float(f) for f in args.fractions.split(",")]
        alphas = [float(a) for a in args.alphas.split(",")]
    except ValueError:
        raise UserInputError("--fractions and --alphas are comma-separated numbers") from None
    study(load_config(args.config, args.override), fractions, args.seeds, alphas, args.out, args.image)
