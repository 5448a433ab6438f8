"""What a run learns, as one object: image classification, text classification or text
regression.  A :class:`~rdrop_paddle.tasks.base.Task` owns its data sets, model, loss,
metrics and export; the commands ask :func:`task_of` for it and carry no modality branches."""
from __future__ import annotations

from rdrop_paddle.config.schema import Config
from rdrop_paddle.tasks.base import TEXT_MODELS, Task
from rdrop_paddle.tasks.image import ImageClassification
from rdrop_paddle.tasks.text import TextClassification, TextRegression, is_regression


def task_of(cfg: Config) -> Task:
    """The task ``cfg`` describes: a text model (``Model.name`` bert / ernie) with one output
    (``Model.num_classes: 1``, or scored data such as GLUE's STS-B) is regression."""
    if cfg.Model.name not in TEXT_MODELS:
        return ImageClassification()
    return TextRegression() if is_regression(cfg) else TextClassification()


def exported_task(model_dir: str) -> Task:
    """The task of an exported folder (what ``infer_cfg.json`` records): text or image."""
    from rdrop_paddle.deploy.text import is_text_folder

    return TextClassification() if is_text_folder(model_dir) else ImageClassification()


__all__ = ["exported_task", "Task", "task_of", "ImageClassification", "TextClassification", "TextRegression", "TEXT_MODELS"]
