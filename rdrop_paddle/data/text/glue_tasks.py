"""The GLUE tasks as their TSV files ship: which columns hold the texts and the label, the
class names, and which task is regression (STS-B's ``score``)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """Columns (header names, or indices for a file without one) and labels of a GLUE task."""
    text_a: object
    text_b: object
    label: object
    labels: tuple
    dev: str = "dev.tsv"
    header: bool = True
    regression: bool = False  # the label column is a score (a float), the one class name its name


_BINARY, _ENTAIL = ("0", "1"), ("entailment", "not_entailment")
GLUE = {"sst-2": GlueTask("sentence", None, "label", _BINARY),
        "cola": GlueTask(3, None, 1, _BINARY, header=False),
        "mrpc": GlueTask("#1 String", "#2 String", "Quality", _BINARY),
        "qqp": GlueTask("question1", "question2", "is_duplicate", _BINARY),
        "qnli": GlueTask("question", "sentence", "label", _ENTAIL),
        "rte": GlueTask("sentence1", "sentence2", "label", _ENTAIL),
        "mnli": GlueTask("sentence1", "sentence2", "gold_label", ("entailment", "neutral", "contradiction"),
                         dev="dev_matched.tsv"),
        "sts-b": GlueTask("sentence1", "sentence2", "score", ("score",), regression=True)}


def scored(name: str, task: str) -> bool:
    """Whether text source ``name`` / ``task`` labels with scores (regression: GLUE's STS-B)."""
    return name == "glue" and task.lower() in GLUE and GLUE[task.lower()].regression
