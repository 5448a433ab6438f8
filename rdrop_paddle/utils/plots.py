"""PNG figures with matplotlib (headless): training curves and the R-Drop comparison."""
from __future__ import annotations

import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rdrop_paddle.errors import UserInputError  # noqa: E402

CURVES = [("train/loss", "loss"), ("train/ce", "cross-entropy"), ("train/kl", "KL"),
          ("train/lr", "learning rate"), ("eval/top1", "eval top-1 (%)")]


def read_scalars(logdir: str) -> dict[str, tuple[list[int], list[float]]]:
    """All scalars of the VisualDL records under ``logdir`` (later records win on a step)."""
    from visualdl import LogReader

    files = sorted(glob.glob(os.path.join(logdir, "**", "vdlrecords.*.log"), recursive=True))
    if not files:
        raise UserInputError(f"no VisualDL records (vdlrecords.*.log) under {logdir}")
    merged: dict[str, dict[int, float]] = {}
    for path in files:
        reader = LogReader(file_path=path)
        for tag in reader.get_tags().get("scalar", []):
            for record in reader.get_data("scalar", tag):
                merged.setdefault(tag, {})[record.id] = record.value
    return {tag: (sorted(d), [d[s] for s in sorted(d)]) for tag, d in merged.items()}


def plot_curves(logdir: str, out: str) -> None:
    scalars = read_scalars(logdir)
    present = [(tag, title) for tag, title in CURVES if tag in scalars]
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 2.8))
    for ax, (tag, title) in zip(list(axes) if len(present) > 1 else [axes], present):
        steps, values = scalars[tag]
        ax.plot(steps, values, marker="o" if len(steps) < 12 else None, lw=1.5)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


def plot_comparison(runs: list[dict], out: str) -> None:
    """Final top-1 and NLL per seed for each alpha (one dot a run, a bar at the mean)."""
    alphas = sorted({r["alpha"] for r in runs})
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    for ax, key, title in ((axes[0], "top1", "held-out top-1 (%)"), (axes[1], "nll", "held-out NLL")):
        for i, alpha in enumerate(alphas):
            values = [r[key] for r in runs if r["alpha"] == alpha]
            ax.scatter([i] * len(values), values, alpha=0.7)
            ax.hlines(sum(values) / len(values), i - 0.25, i + 0.25, color="k")
        ax.set_xticks(range(len(alphas)), ["baseline\n(alpha 0)" if a == 0 else f"R-Drop\n(alpha {a:g})"
                                           for a in alphas])
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save(fig, out)


def _save(fig, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out)
