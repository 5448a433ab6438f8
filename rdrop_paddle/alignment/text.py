"""Text alignment steps (issue 37): tokenizer ids, forward logits, the official ``bert_rdrop``
objective with its gradients, and AdamW training steps, against transformers + PyTorch.

The references are a randomly initialised transformers BERT / ERNIE written with
``save_pretrained`` and converted with the package's converter, so every step also checks
the conversion.  Dropout is made the same on both sides by drawing each call's mask from
a counter (the k-th dropout call of either framework uses mask k), so the two R-Drop passes
differ as they do in training, identically in Paddle and PyTorch.
"""
from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import paddle
import torch

from rdrop_paddle.alignment.reference import official_bert_kl_loss
from rdrop_paddle.alignment.report import StepResult, record
from rdrop_paddle.config.schema import OptimizerConfig
from rdrop_paddle.convert.text import convert_text_folder
from rdrop_paddle.data.text import Tokenizer
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.losses import RDropCrossEntropy
from rdrop_paddle.losses.two_pass import rdrop_forward
from rdrop_paddle.models import from_pretrained

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "is", "not", "good", "bad", "##s", "好", "天",
         "气", "é", ",", ".", "!"] + list("abcdefghijklmnopqrstuvwxyz")
TEXTS = ["The movie is not good!", "Émile's movies, bad.", "好天气", "", "xyz unknownword"]
PAIRS = ["good", "the the the the the the", "天", "!", ""]


def _pair(kind: str, folder: str, hidden_dropout: float = 0.0, classes: int = 3):
    """A transformers ``{kind}ForSequenceClassification`` saved in ``folder/hf`` and the package's
    classifier converted from it (``folder/pd``)."""
    from transformers import BertConfig, BertForSequenceClassification, ErnieConfig, ErnieForSequenceClassification

    torch.manual_seed(0)
    kw = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, num_labels=classes, initializer_range=0.2, hidden_dropout_prob=hidden_dropout,
              attention_probs_dropout_prob=0.0)
    hf = (BertForSequenceClassification(BertConfig(**kw)) if kind == "bert" else
          ErnieForSequenceClassification(ErnieConfig(use_task_id=True, **kw)))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its shard-writing bar on stderr
    hf.save_pretrained(os.path.join(folder, "hf"))
    with open(os.path.join(folder, "hf", "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    convert_text_folder(os.path.join(folder, "hf"), os.path.join(folder, "pd"))
    return hf, from_pretrained(os.path.join(folder, "pd"), classes, notice=lambda _: None)


def _batch(folder: str) -> dict:
    return Tokenizer.from_pretrained(folder)(TEXTS, PAIRS, max_length=16)


def tokenizer(out_dir: str) -> StepResult:
    """WordPiece ids, segment ids and masks vs transformers' BertTokenizerFast (cased and uncased)."""
    from transformers import BertTokenizerFast

    ours, theirs = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(VOCAB) + "\n")
        for lower in (True, False):
            ref = BertTokenizerFast.from_pretrained(folder, do_lower_case=lower)
            got = Tokenizer(VOCAB, lower)(TEXTS, PAIRS, max_length=12)
            want = ref(TEXTS, PAIRS, truncation=True, max_length=12, padding=True)
            for key, value in got.items():
                ours[f"{key}_{lower}"], theirs[f"{key}_{lower}"] = value, np.asarray(want[key])
    return StepResult("text_tokenizer", record(out_dir, "text_tokenizer", ours, theirs, 0.0), 0.0,
                      "pairs, accents, Chinese, unknown words, empty texts, truncation; cased and uncased")


def forward(out_dir: str) -> StepResult:
    """Eval-mode logits of BERT and ERNIE (task-type embeddings) vs transformers."""
    ours, theirs = {}, {}
    for kind in ("bert", "ernie"):
        with tempfile.TemporaryDirectory() as folder:
            hf, net = _pair(kind, folder)
            batch = _batch(os.path.join(folder, "pd"))
        hf.eval()
        net.eval()
        ours[kind] = net(**{k: paddle.to_tensor(v) for k, v in batch.items()}).numpy()
        with torch.no_grad():
            theirs[kind] = hf(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    return StepResult("text_forward", record(out_dir, "text_forward", ours, theirs, 1e-5), 1e-5,
                      "BertForSequenceClassification and ErnieForSequenceClassification (use_task_id), converted")


class _Masks:
    """The k-th dropout call gets mask k (a seeded Bernoulli draw), in either framework."""

    def __init__(self) -> None:
        self.calls = 0

    def mask(self, shape, p: float) -> np.ndarray:
        self.calls += 1
        keep = np.random.default_rng(self.calls).random(tuple(shape)) >= p
        return (keep / (1.0 - p)).astype(np.float32)

    def install(self, paddle_model, torch_model) -> None:
        for layer in paddle_model.sublayers():
            if "Dropout" in type(layer).__name__ and float(layer.p) > 0:
                layer.forward = lambda x, p=float(layer.p): x * paddle.to_tensor(self.mask(x.shape, p))
        for module in torch_model.modules():
            if isinstance(module, torch.nn.Dropout) and module.p > 0:
                module.forward = lambda x, p=module.p: x * torch.from_numpy(self.mask(x.shape, p))


def _official_loss(hf, batch: dict, labels: torch.Tensor) -> torch.Tensor:
    """The official ``bert_kl`` on transformers' two passes (:func:`official_bert_kl_loss`)."""
    inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
    return official_bert_kl_loss(hf(**inputs).logits, hf(**inputs).logits, labels)


def _grads(net, hf) -> tuple[dict, dict]:
    ours, theirs = {}, {}
    torch_params = dict(hf.named_parameters())
    for name, param in net.named_parameters():
        g = param.grad.numpy()
        ours[name] = g
        t = torch_params[name].grad.numpy()
        theirs[name] = t.T if g.ndim == 2 and "_embeddings." not in name else t
    return ours, theirs


def loss(out_dir: str) -> StepResult:
    """The official bert_rdrop objective (two passes, hidden dropout 0.1) and every parameter's
    gradient: the package's loss (vit_src scaling, alpha 0.25) vs that code on transformers."""
    with tempfile.TemporaryDirectory() as folder:
        hf, net = _pair("bert", folder, hidden_dropout=0.1)
        batch = _batch(os.path.join(folder, "pd"))
    labels = np.array([0, 2, 1, 1, 0])
    hf.train()
    net.train()
    masks = _Masks()
    masks.install(net, hf)
    out = rdrop_forward(net, RDropCrossEntropy(0.25, "vit_src"), {k: paddle.to_tensor(v) for k, v in batch.items()},
                        paddle.to_tensor(labels), mode="twice")
    out["loss"].backward()
    masks.calls = 0
    official = _official_loss(hf, batch, torch.from_numpy(labels))
    official.backward()
    ours, theirs = _grads(net, hf)
    ours["loss"], theirs["loss"] = out["loss"].numpy(), official.detach().numpy()
    return StepResult("text_loss", record(out_dir, "text_loss", ours, theirs, 1e-5, relative=True), 1e-5,
                      "value and all parameter gradients / max(1, |torch|); the same dropout masks on both sides")


def train(out_dir: str, steps: int = 3) -> StepResult:
    """AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.01 except biases and LayerNorm), clip 1.0,
    polynomial warm-up schedule, R-Drop steps with the same dropout masks: every weight after
    the steps vs torch.optim.AdamW on transformers."""
    with tempfile.TemporaryDirectory() as folder:
        hf, net = _pair("bert", folder, hidden_dropout=0.1)
        batch = _batch(os.path.join(folder, "pd"))
    labels = np.array([0, 2, 1, 1, 0])
    cfg = OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.01, warmup_steps=1, schedule="polynomial",
                          betas=[0.9, 0.98], eps=1e-6, grad_clip=1.0)
    sched = build_scheduler(cfg, steps)
    opt = build_optimizer(cfg, net, sched)
    no_decay = [p for n, p in hf.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in hf.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    t_opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    from transformers import get_polynomial_decay_schedule_with_warmup

    t_sched = get_polynomial_decay_schedule_with_warmup(t_opt, 1, steps)
    hf.train()
    net.train()
    masks = _Masks()
    masks.install(net, hf)
    criterion = RDropCrossEntropy(0.25, "vit_src")
    for _ in range(steps):
        start = masks.calls
        rdrop_forward(net, criterion, {k: paddle.to_tensor(v) for k, v in batch.items()}, paddle.to_tensor(labels),
                      mode="twice")["loss"].backward()
        sched.step()  # the package steps the schedule before the update (vit_src's order)
        opt.step()
        opt.clear_grad()
        masks.calls = start
        _official_loss(hf, batch, torch.from_numpy(labels)).backward()
        with warnings.catch_warnings():  # torch warns about this order, which is the point here
            warnings.simplefilter("ignore")
            t_sched.step()  # so the reference steps first too: HF Trainer's k-th update uses step k-1's rate
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        t_opt.step()
        t_opt.zero_grad()
    theirs = {n: p.detach().numpy() for n, p in hf.named_parameters()}
    ours = {n: p.numpy() for n, p in net.named_parameters()}
    theirs = {n: (v.T if ours[n].ndim == 2 and "_embeddings." not in n else v) for n, v in theirs.items() if n in ours}
    return StepResult("text_train", record(out_dir, "text_train", ours, theirs, 1e-5), 1e-5,
                      f"{steps} R-Drop AdamW steps, all weights vs torch.optim.AdamW + transformers' polynomial schedule")
