"""Text R-Drop on CPU: the package's BERT step vs transformers + PyTorch, and the tokenizer.

    python benchmarks/text_bench.py [--sizes base,demo] [--batch 8] [--seq 128]

Each cell runs in its own process: warm-up, then the median of several repeats.  A step is
R-Drop training as configs/bert_glue.yaml runs it: two passes of the encoder (``twice``),
the official bert_rdrop objective, AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.01),
global-norm clip 1.0, on random ids of ``--seq`` tokens; PyTorch runs transformers'
``BertForSequenceClassification`` of the same size (eager attention).  ``demo`` is the
2-layer width-64 BERT of tools/make_demo_text.py, ``base`` BERT-base (110 M parameters).
The tokenizer rows encode 20,000 generated reviews (the demo's) with the package's
Tokenizer and with transformers' BertTokenizerFast on the same vocab.
"""
import argparse
import os
import sys

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.utils import bench

SIZES = {"demo": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
         "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}


def _config(size: str) -> dict:
    return {"model_type": "bert", "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, **SIZES[size]}


def _batch(batch: int, seq: int):
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, (batch, seq))
    ids[:, 0] = 101
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}, \
        rng.integers(0, 2, batch)


def _paddle_step(size: str, batch: int, seq: int):
    import paddle

    from rdrop_paddle.config.schema import OptimizerConfig
    from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
    from rdrop_paddle.losses import RDropCrossEntropy
    from rdrop_paddle.losses.two_pass import rdrop_forward
    from rdrop_paddle.models.bert_config import parse_config
    from rdrop_paddle.models.pretrained import text_classifier

    paddle.seed(0)
    net = text_classifier(parse_config(_config(size), size), 2)
    cfg = OptimizerConfig(name="adamw", lr=1e-5, weight_decay=0.01, betas=[0.9, 0.98], eps=1e-6, schedule="constant")
    opt = build_optimizer(cfg, net, build_scheduler(cfg, 100))
    inputs, y = _batch(batch, seq)
    inputs, y = {k: paddle.to_tensor(v) for k, v in inputs.items()}, paddle.to_tensor(y)
    crit = RDropCrossEntropy(0.25, "vit_src")
    net.train()

    def step():
        out = rdrop_forward(net, crit, inputs, y, "twice")
        out["loss"].backward()
        opt.step()
        opt.clear_grad(set_to_zero=False)
        return float(out["loss"])
    return step


def _torch_step(size: str, batch: int, seq: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from rdrop_paddle.alignment.reference import official_bert_kl_loss

    torch.manual_seed(0)
    cfg = {k: v for k, v in _config(size).items() if k != "model_type"}
    net = BertForSequenceClassification(BertConfig(**cfg, num_labels=2, attn_implementation="eager"))
    inputs, y = _batch(batch, seq)
    inputs, y = {k: torch.from_numpy(v) for k, v in inputs.items()}, torch.from_numpy(y)
    params = list(net.named_parameters())
    groups = [{"params": [p for n, p in params if not (n.endswith("bias") or "LayerNorm" in n)], "weight_decay": 0.01},
              {"params": [p for n, p in params if n.endswith("bias") or "LayerNorm" in n], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.98), eps=1e-6)
    net.train()

    return bench.torch_step(net, opt, lambda: official_bert_kl_loss(net(**inputs).logits, net(**inputs).logits, y))


def _tokenizer(which: str):
    import tempfile

    import numpy as np

    from rdrop_paddle.commands.demo_text import review, vocabulary
    from rdrop_paddle.data.text import Tokenizer

    rng = np.random.default_rng(0)
    texts = [review(rng)[0] for _ in range(20_000)]
    if which == "ours":
        tok = Tokenizer(vocabulary())
        return lambda: tok(texts, max_length=128), len(texts)
    from transformers import BertTokenizerFast

    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary()) + "\n")
    ref = BertTokenizerFast.from_pretrained(folder)
    return lambda: ref(texts, truncation=True, max_length=128, padding=True, return_tensors="np"), len(texts)


def worker(framework: str, size: str, batch: int, seq: int, warmup: int, repeats: int) -> dict:
    from rdrop_paddle.cpu import configure_environment

    configure_environment()
    if framework.startswith("tokenizer"):
        fn, n = _tokenizer(framework.split("_")[1])
        return {"per_s": n / bench.median_seconds(fn, repeats, warmup=1)}
    if framework == "paddle":
        from rdrop_paddle.cpu import configure_device

        configure_device("cpu")
    step = _torch_step(size, batch, seq) if framework == "torch" else _paddle_step(size, batch, seq)
    return {"per_s": batch / bench.median_seconds(step, repeats, warmup=warmup), "peak_mb": bench.peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="demo,base")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    common = [f"--batch={args.batch}", f"--seq={args.seq}", f"--warmup={args.warmup}", f"--repeats={args.repeats}"]
    if args.worker:
        bench.emit(worker(*args.worker, args.batch, args.seq, args.warmup, args.repeats))
        return
    script = os.path.abspath(__file__)
    print(f"# {bench.machine()}\n# R-Drop step (two passes, AdamW, clip), batch {args.batch} x {args.seq} tokens")
    print("| model | Paddle (sequences/s) | PyTorch (sequences/s) | Paddle / PyTorch | peak RSS Paddle / PyTorch (MB) |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes.split(","):
        ours, theirs = (bench.run_worker(script, ["--worker", f, size, *common]) for f in ("paddle", "torch"))
        print(f"| {size} | {ours['per_s']:.2f} | {theirs['per_s']:.2f} | {ours['per_s'] / theirs['per_s']:.2f} | "
              f"{ours['peak_mb']:.0f} / {theirs['peak_mb']:.0f} |", flush=True)
    ours, theirs = (bench.run_worker(script, ["--worker", f"tokenizer_{w}", "demo", *common]) for w in ("ours", "hf"))
    print(f"\ntokenizer, 20,000 reviews: package {ours['per_s']:,.0f} lines/s, BertTokenizerFast "
          f"{theirs['per_s']:,.0f} lines/s")


if __name__ == "__main__":
    sys.exit(main())
