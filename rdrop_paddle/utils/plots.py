"""PNG figures with matplotlib (headless): training curves and the R-Drop comparison."""
from __future__ import annotations

import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rdrop_paddle.errors import UserInputError  # noqa: E402
from rdrop_paddle.io import atomic_write  # noqa: E402

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


def plot_study(rows: list[dict], alpha: float, out: str) -> None:
    """Paired difference (R-Drop - baseline) of held-out top-1 and NLL with 95 % intervals."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    x = [r["train_images"] for r in rows]
    for ax, key, title in ((axes[0], "top1", "Δ held-out top-1 (points)"),
                           (axes[1], "nll", "Δ held-out NLL")):
        mean = [r[key][0] for r in rows]
        lower = [r[key][0] - r[key][1] for r in rows]
        upper = [r[key][2] - r[key][0] for r in rows]
        ax.errorbar(x, mean, yerr=[lower, upper], fmt="o-", capsize=4)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(x, [str(v) for v in x])
        ax.set_xlabel("training images (log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.suptitle(f"R-Drop (alpha {alpha:g}) minus baseline, paired seeds, 95% t-intervals", fontsize=9)
    fig.tight_layout()
    _save(fig, out)


def plot_alignment_curves(paddle_loss, torch_loss, hits: dict, count: int, out: str) -> None:
    """The training-alignment losses of both frameworks, and their relative difference."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    steps = range(1, len(paddle_loss) + 1)
    axes[0].plot(steps, torch_loss, lw=3, alpha=0.5, label=f"PyTorch (top-1 {100 * hits['torch'] / count:.2f})")
    axes[0].plot(steps, paddle_loss, lw=1, color="k", label=f"Paddle (top-1 {100 * hits['paddle'] / count:.2f})")
    axes[0].set_title("training loss")
    axes[0].legend(fontsize=8)
    rel = [abs(a - b) / max(1.0, abs(b)) for a, b in zip(paddle_loss, torch_loss)]
    axes[1].semilogy(steps, [max(r, 1e-12) for r in rel])
    axes[1].set_title("|Paddle - PyTorch| / max(1, |PyTorch|)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


def _save(fig, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
