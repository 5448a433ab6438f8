"""The interface every task implements, and what classification tasks share."""
from __future__ import annotations

from typing import Callable, Optional

import paddle

from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError

TEXT_MODELS = ("bert", "ernie")  # Model.name of a text model; its config.json says the size


class Task:
    """Data, model, loss, metrics and export of one kind of learning problem.

    ``samples`` names what a data set holds in messages; ``keys`` are the headline metrics,
    ``keys[0]`` chooses the best checkpoint; ``worst`` is below any value of it (the best score
    before the first evaluation); ``outputs`` names the model's outputs in messages."""
    samples = "images"
    keys = ("top1", "top5")
    worst = -1.0
    outputs = "logits"  # what the model's outputs are called in messages

    def datasets(self, cfg: Config) -> tuple:
        """The (train, val) data sets ``cfg.Data`` names, fitting the model (checked first)."""
        raise NotImplementedError

    def model(self, cfg: Config) -> paddle.nn.Layer:
        """The model ``cfg.Model`` describes, built under a fresh name scope."""
        raise NotImplementedError

    def criterion(self, cfg: Config) -> paddle.nn.Layer:
        """The R-Drop objective of ``cfg.Loss``."""
        from rdrop_paddle.losses import RDropCrossEntropy

        return RDropCrossEntropy(cfg.Loss.alpha, cfg.Loss.convention, cfg.Loss.kl_batch_size,
                                 label_smoothing=cfg.Loss.label_smoothing)

    def evaluate(self, cfg: Config, model: paddle.nn.Layer, loader, show_progress: bool = False,
                 should_stop: Optional[Callable[[], bool]] = None, per_class: bool = False) -> Optional[dict]:
        """The metrics of ``model`` on ``loader`` (None if ``should_stop`` stopped it)."""
        from rdrop_paddle.engine.evaluate import evaluate

        return evaluate(model, loader, show_progress, should_stop,
                        num_classes=cfg.Model.num_classes if per_class else 0)

    def summary(self, metrics: dict) -> str:
        """The last line eval prints: ``top1: X, top5: Y``."""
        return ", ".join(f"{k}: {metrics[k]:.2f}" for k in (*[k for k in ("f1", "mcc") if k in metrics], *self.keys))

    def keep_files(self, cfg: Config) -> None:
        """Copy what evaluation and export need besides weights into the run's folder."""

    def export(self, cfg: Config, model: paddle.nn.Layer, out: str, names: list[str], weights: str, args) -> list[str]:
        """Write the inference folder ``out``; returns its files."""
        raise NotImplementedError

    def predict(self, args) -> tuple[list[dict], dict, str]:
        """``tools/infer.py``'s inputs through the exported model ``args.model_dir``: the
        predictions, the JSON's other fields and the table to print."""
        raise NotImplementedError


def check_kind(cfg: Config) -> None:
    """``Data.name`` is data of the kind ``Model.name`` takes (text data for :data:`TEXT_MODELS`)."""
    from rdrop_paddle.data import TEXT_SOURCES

    text_model, text_data = cfg.Model.name in TEXT_MODELS, cfg.Data.name in TEXT_SOURCES
    if text_model != text_data:
        kind = "text" if text_data else "image"
        wanted = " or ".join(TEXT_MODELS) if text_data else "an image model such as vit_small_patch16_224"
        raise UserInputError(f"Data.name {cfg.Data.name} is {kind} data but Model.name {cfg.Model.name} is "
                             f"{'a text' if text_model else 'an image'} model; set Model.name to {wanted}")
