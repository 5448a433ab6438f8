"""Text classifiers for deployment: :func:`export_text` writes the eval-mode model for inputs
``input_ids`` and ``token_type_ids`` (``[batch, length]`` int64, any size; the attention
mask is ``input_ids != [PAD]``, computed in the graph, as PaddleNLP's exported models do),
``infer_cfg.json`` (class names, ``max_seq_len``, ``output``: logits, probabilities or, for a
regression model, its score) and the tokenizer files, optionally ``inference.onnx``;
:class:`TextPredictor` tokenises texts and runs it by Paddle Inference, ONNX Runtime or OpenVINO."""
from __future__ import annotations

import os
import shutil

import numpy as np
import paddle

from rdrop_paddle.data.text.tokenizer import Tokenizer, pad
from rdrop_paddle.deploy.folder import CONFIG, PREFIX, model_files
from rdrop_paddle.deploy.export import write_staged
from rdrop_paddle.deploy.onnx import export_onnx
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import read_json, write_json
from rdrop_paddle.io.tokenizer_files import TOKENIZER_FILES
from rdrop_paddle.utils.capture import filtered_output

TASK = "text_classification"
INPUTS = ("input_ids", "token_type_ids")
OUTPUTS = ("logits", "probabilities", "score")


class _Exported(paddle.nn.Layer):
    """``model(input_ids, token_type_ids, attention_mask=input_ids != pad)`` (a softmax after, optionally)."""

    def __init__(self, model: paddle.nn.Layer, pad_id: int, softmax: bool) -> None:
        super().__init__()
        self.model, self.pad_id, self.softmax = model, pad_id, softmax

    def forward(self, input_ids, token_type_ids):
        mask = (input_ids != self.pad_id).astype("int64")
        logits = self.model(input_ids, token_type_ids=token_type_ids, attention_mask=mask)
        return paddle.nn.functional.softmax(logits, axis=-1) if self.softmax else logits


def export_text(model: paddle.nn.Layer, out_dir: str, text_dir: str, class_names: list[str], max_seq_len: int,
                extra: dict | None = None, onnx_opset: int | None = None, output: str = "logits") -> list[str]:
    """Save text model ``model`` into ``out_dir`` with the tokenizer files of ``text_dir``
    (written into a staging folder, then renamed into place); returns the files.  ``output``
    is what the graph returns (:data:`OUTPUTS`; ``probabilities`` adds a softmax)."""
    tokenizer = Tokenizer.from_pretrained(text_dir)  # checks vocab.txt before anything is written
    arch = model.config
    _check_tables({"vocab_size": arch.vocab_size, "max_position_embeddings": arch.max_position_embeddings,
                   "max_seq_len": max_seq_len}, tokenizer.vocab_size, text_dir)

    def write(staging: str) -> None:
        model.eval()
        spec = [paddle.static.InputSpec([None, None], "int64", name) for name in INPUTS]
        with filtered_output(lambda line: "not support input out tensor" in line):
            paddle.jit.save(paddle.jit.to_static(_Exported(model, tokenizer.pad_id, output == "probabilities"), input_spec=spec,
                                                 full_graph=True), os.path.join(staging, PREFIX))
        for name in TOKENIZER_FILES:
            if os.path.isfile(os.path.join(text_dir, name)):
                shutil.copyfile(os.path.join(text_dir, name), os.path.join(staging, name))
        write_json({"task": TASK, "inputs": list(INPUTS), "max_seq_len": max_seq_len, "class_names": class_names,
                    "vocab_size": arch.vocab_size, "max_position_embeddings": arch.max_position_embeddings,
                    "output": output, "paddle": paddle.__version__,
                    **(extra or {})}, os.path.join(staging, CONFIG))
        if onnx_opset is not None:
            export_onnx(*model_files(staging), onnx_opset)

    return write_staged(model, out_dir, onnx_opset, write)


def is_text_folder(model_dir: str) -> bool:
    """Whether ``model_dir`` holds an exported text classifier."""
    path = os.path.join(model_dir, CONFIG)
    return os.path.isfile(path) and isinstance(cfg := read_json(path), dict) and cfg.get("task") == TASK


def _check_tables(cfg: dict, tokens: int, path: str) -> None:
    """The tokenizer's ids and ``max_seq_len`` positions fit the exported tables (recorded by
    exports since 0.6; an older folder is taken as it is): out-of-range ids would fail in
    Paddle and ONNX Runtime and answer silently wrong in OpenVINO."""
    vocab, positions = cfg.get("vocab_size"), cfg.get("max_position_embeddings")
    for key, value in (("vocab_size", vocab), ("max_position_embeddings", positions)):
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise UserInputError(f"{path}: {key} {str(value)[:40]!r} is not a positive integer")
    if vocab is not None and tokens > vocab:
        raise UserInputError(f"{path}: the tokenizer has {tokens:,} token ids but the model's vocab_size is "
                             f"{vocab:,}: the embedding has no row for the ids above it")
    if positions is not None and cfg["max_seq_len"] > positions:
        raise UserInputError(f"{path}: max_seq_len {cfg['max_seq_len']} is longer than the model's "
                             f"max_position_embeddings {positions}")


class TextPredictor:
    """An exported text model: ``predict(texts, topk)`` -> per text its top-k class names and
    probabilities (a regression model: its ``score``), by Paddle Inference (``backend="paddle"``),
    ONNX Runtime or OpenVINO."""

    def __init__(self, model_dir: str, backend: str = "paddle", cpu_threads: int | None = None,
                 mkldnn: bool | None = None, precision: str = "fp32") -> None:
        cfg = read_json(os.path.join(model_dir, CONFIG))
        names, length = cfg.get("class_names"), cfg.get("max_seq_len")
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names) and isinstance(length, int)
                and 2 < length <= 1 << 16 and cfg.get("output") in OUTPUTS):
            raise UserInputError(f"{os.path.join(model_dir, CONFIG)}: not a text classifier's config")
        self.cfg, self.tokenizer = cfg, Tokenizer.from_pretrained(model_dir)
        _check_tables(cfg, self.tokenizer.vocab_size, os.path.join(model_dir, CONFIG))
        from rdrop_paddle.deploy.predictor import session

        self.run = session(model_dir, backend, precision, "cpu", cpu_threads, mkldnn)

    def logits(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """The model's outputs for ``texts``; a tab splits a text into a sentence pair, as in
        the training files (``text_a<TAB>text_b``)."""
        out, length = [], self.cfg["max_seq_len"]
        for i in range(0, len(texts), batch_size):
            pieces = [text.split("\t", 1) for text in texts[i:i + batch_size]]
            encoded = [self.tokenizer.encode(p[:1], p[1:] or None, length)[0] for p in pieces]
            batch = pad(encoded, self.tokenizer.pad_id, self.tokenizer.settings.padding_side)
            out.append(self.run({k: batch[k] for k in INPUTS}))
        return np.concatenate(out)

    def predict(self, texts: list[str], topk: int = 5, batch_size: int = 32) -> list[dict]:
        logits = self.logits(texts, batch_size)
        if not np.isfinite(logits).all():
            raise UserInputError("the model gives non-finite outputs: its weights are not usable; nothing was written")
        if self.cfg["output"] == "score":
            return [{"text": text, "score": float(row[0])} for text, row in zip(texts, logits)]
        probs = logits
        if self.cfg["output"] == "logits":
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = z / z.sum(axis=1, keepdims=True)
        names = self.cfg["class_names"]
        return [{"text": text, "topk": [{"class": int(c), "name": names[c] if c < len(names) else str(c),
                                         "prob": float(p[c])} for c in np.argsort(-row, kind="stable")[:topk]],
                 self.cfg["output"]: row.tolist()} for text, row, p in zip(texts, logits, probs)]


def table(results: list[dict], topk: int) -> str:
    """A Markdown table of :meth:`TextPredictor.predict`'s results (texts cut at 60 characters)."""
    from rdrop_paddle.utils.terminal import printable

    scores = "score" in results[0]
    k = 1 if scores else min(topk, len(results[0]["topk"]))
    heads = ["score"] if scores else [f"top-{i + 1}" for i in range(k)]
    lines = [f"| text | {' | '.join(heads)} |", "| --- |" + " --- |" * k]
    for r in results:
        text = " ".join(r["text"].replace("\t", " [SEP] ").split())
        cells = (f"{r['score']:.4f}" if scores else
                 " | ".join(f"{printable(t['name'])} ({t['prob']:.3f})" for t in r["topk"]))
        lines.append(f"| {printable(text[:60]) + ('...' if len(text) > 60 else '')} | {cells} |")
    return "\n".join(lines)
