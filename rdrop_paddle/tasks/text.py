"""Text tasks: BERT / ERNIE 3.0 classifiers (GLUE, CLUE, PaddleNLP folders) and regression
(GLUE's STS-B), their architecture and tokenizer read from a converted folder."""
from __future__ import annotations

import os
from typing import Callable, Optional

import paddle

from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.tokenizer_files import TOKENIZER_FILES
from rdrop_paddle.tasks.base import Task, check_kind

TEXT_FILES = ("config.json", *TOKENIZER_FILES)  # a run keeps them beside its weights


def is_regression(cfg: Config) -> bool:
    """A text model with one output, or data labelled with scores (GLUE STS-B)."""
    from rdrop_paddle.data.text.glue_tasks import scored

    return cfg.Model.num_classes == 1 or scored(cfg.Data.name, cfg.Data.task)


def text_dir(cfg: Config) -> str:
    """Where a text model's ``config.json`` and tokenizer files are: the converted folder
    ``Model.pretrained``, else the run's ``Global.output_dir`` (training copies them there)."""
    if cfg.Model.pretrained and os.path.isdir(cfg.Model.pretrained):
        return cfg.Model.pretrained
    return cfg.Global.output_dir


MAX_TEXT_FILE_BYTES = 256 << 20


def read_texts(args) -> list[str]:
    """``--text`` values, then the non-empty lines of ``--text-file`` (a regular UTF-8 file of
    at most 256 MiB); each text is checked by the tokenizer before it is tokenised."""
    from rdrop_paddle.data.entries import check_regular

    texts = list(args.text or [])
    if args.text_file:
        path = args.text_file
        if not os.path.exists(path):
            raise UserInputError(f"--text-file {path}: no such file")
        check_regular(path, "--text-file ")
        if os.path.getsize(path) > MAX_TEXT_FILE_BYTES:
            raise UserInputError(f"--text-file {path}: larger than {MAX_TEXT_FILE_BYTES >> 20} MiB "
                                 f"({os.path.getsize(path):,} bytes); split it")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even if swapped for a FIFO
            with os.fdopen(fd, "rb") as f:
                raw = f.read(MAX_TEXT_FILE_BYTES + 1)
            if len(raw) > MAX_TEXT_FILE_BYTES:
                raise UserInputError(f"--text-file {path}: larger than {MAX_TEXT_FILE_BYTES >> 20} MiB; split it")
            texts += [line for line in raw.decode("utf-8").splitlines() if line.strip()]
        except OSError as e:
            raise UserInputError(f"cannot read --text-file {path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise UserInputError(f"--text-file {path}: not UTF-8 (byte {e.start})") from None
    if not texts:
        raise UserInputError("a text model needs --text \"...\" or --text-file FILE")
    return texts


class TextClassification(Task):
    samples = "texts"

    def model(self, cfg: Config) -> paddle.nn.Layer:
        """The classifier of ``text_dir(cfg)/config.json`` (dropout rates from ``Model.dropout`` /
        ``Model.attn_dropout``), with ``Model.pretrained``'s weights when it is a folder."""
        from rdrop_paddle.models.bert_config import read_config
        from rdrop_paddle.models.pretrained import text_classifier

        folder, m = text_dir(cfg), cfg.Model
        arch = read_config(folder)
        if arch.model_type != m.name:
            raise UserInputError(f"Model.name is {m.name} but {os.path.join(folder, 'config.json')} is a "
                                 f"{arch.model_type} model; set Model.name: {arch.model_type}")
        weights = m.pretrained
        if weights and os.path.isdir(weights):
            weights = os.path.join(weights, "model.pdparams")
        return text_classifier(arch, m.num_classes or 2, m.dropout, m.attn_dropout, weights,
                               os.path.join(folder, "config.json"))

    def datasets(self, cfg: Config) -> tuple:
        from rdrop_paddle.data import build_datasets
        from rdrop_paddle.models.bert_config import check_inputs_fit, read_config
        check_kind(cfg)
        self._check_data(cfg)
        folder = text_dir(cfg)
        check_inputs_fit(read_config(folder), folder, cfg.Data.max_seq_len, "Data.max_seq_len")
        return build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes, 0, folder)

    def _check_data(self, cfg: Config) -> None:
        """Refuse data the task cannot learn (regression checks that it has scores)."""

    def evaluate(self, cfg: Config, model, loader, show_progress: bool = False,
                 should_stop: Optional[Callable[[], bool]] = None, per_class: bool = False) -> Optional[dict]:
        """Top-1/5 and NLL, with F1 and Matthews correlation (GLUE's MRPC, QQP, CoLA)."""
        from rdrop_paddle.engine.evaluate import evaluate

        return evaluate(model, loader, show_progress, should_stop, cfg.Model.num_classes if per_class else 0,
                        confusion_classes=cfg.Model.num_classes)

    def keep_files(self, cfg: Config) -> None:
        """Keep ``config.json`` and the tokenizer files in the run's folder, so that evaluation
        and export need only the run (written atomically)."""
        import shutil

        from rdrop_paddle.io import atomic_write

        src = text_dir(cfg)
        if os.path.abspath(src) == os.path.abspath(cfg.Global.output_dir):
            return
        for name in TEXT_FILES:
            if os.path.isfile(os.path.join(src, name)):
                atomic_write(os.path.join(cfg.Global.output_dir, name),
                             lambda tmp, n=name: shutil.copyfile(os.path.join(src, n), tmp))

    def export(self, cfg: Config, model, out: str, names: list[str], weights: str, args) -> list[str]:
        from rdrop_paddle.deploy.text import export_text

        if args.precision == "int8":
            raise UserInputError("--precision int8 is built for image models; export text models in fp32")
        return export_text(model, out, text_dir(cfg), names, cfg.Data.max_seq_len,
                           {"model": cfg.Model.name, "weights": weights}, args.opset if args.onnx else None,
                           self._output(args))

    def _output(self, args) -> str:
        return "probabilities" if args.add_softmax else "logits"

    def predict(self, args) -> tuple[list[dict], dict, str]:
        """``tools/infer.py``'s ``--text`` / ``--text-file`` through the exported model (a
        classifier's top-k classes, a regression model's score)."""
        from rdrop_paddle.deploy.text import TextPredictor, table

        texts = read_texts(args)
        predictor = TextPredictor(args.model_dir, args.backend, args.cpu_threads or None, args.enable_mkldnn,
                                  args.precision)
        results = predictor.predict(texts, args.topk, args.batch_size)
        return results, {}, table(results, args.topk)


class TextRegression(TextClassification):
    """One output per text (pair), trained with :class:`~rdrop_paddle.losses.RDropMSE` and
    scored by Pearson and Spearman correlation, as GLUE's STS-B."""
    keys = ("pearson", "spearman")
    worst = -101.0  # correlations are in [-100, 100] percent
    outputs = "scores"

    def _check_data(self, cfg: Config) -> None:
        from rdrop_paddle.data.text.glue_tasks import scored

        if cfg.Model.num_classes not in (0, 1):
            raise UserInputError(f"Model.num_classes {cfg.Model.num_classes}: a regression model has one output")
        if not scored(cfg.Data.name, cfg.Data.task):
            raise UserInputError(f"Model.num_classes 1 is regression, which needs scored data (Data.name glue, "
                                 f"Data.task sts-b); Data.name {cfg.Data.name} labels with classes")

    def criterion(self, cfg: Config) -> paddle.nn.Layer:
        from rdrop_paddle.losses import RDropMSE

        return RDropMSE(cfg.Loss.alpha, cfg.Loss.convention)

    def evaluate(self, cfg: Config, model, loader, show_progress: bool = False,
                 should_stop: Optional[Callable[[], bool]] = None, per_class: bool = False) -> Optional[dict]:
        from rdrop_paddle.engine.evaluate import evaluate_regression

        return evaluate_regression(model, loader, show_progress, should_stop)

    def _output(self, args) -> str:
        if args.add_softmax:
            raise UserInputError("--add-softmax is for classifiers; a regression model outputs its score")
        return "score"
