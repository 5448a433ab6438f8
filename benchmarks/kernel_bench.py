"""Per-operator times of one ViT block, Paddle (as the package runs it) vs PyTorch.

    python benchmarks/kernel_bench.py [--model vit_small_patch16_224] [--batch 16]

The profile behind the ratios of ``benchmarks/benchmark.py``: each operator of a ViT block at
the shapes of a train step (default: ViT-S/16, 224 px, batch 16 = an R-Drop ``[x; x]``
step of batch 8), forward and forward+backward, median milliseconds, one process per
framework.  Paddle uses the layers the models use (``rdrop_paddle.models.layers``) and
``paddle.nn.functional`` for the rest; PyTorch uses ``torch.nn``.  The last column is the
difference per step: times the uses per block, times the blocks.  Needs torch.  GEMM rows
swing between runs on a shared machine; the step benchmark is the reference for those.
"""
import argparse
import os

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cpu import configure_environment
from rdrop_paddle.utils import bench


def _block_ops(layers: dict, dim: int, heads: int, tokens: int, batch: int) -> dict:
    """name -> (input shapes, function, uses per block), from one framework's ``layers``."""
    tok, hid, att = [batch, tokens, dim], [batch, tokens, 4 * dim], [batch, heads, tokens, tokens]
    qkd = [batch, heads, tokens, dim // heads]
    linear, drop = layers["linear"], layers["dropout"](0.1)
    return {
        "layer_norm": ([tok], layers["layer_norm"](dim), 2),
        "linear qkv": ([tok], linear(dim, 3 * dim), 1),
        "q @ k^T": ([qkd, qkd], layers["q_kt"], 1),
        "softmax": ([att], layers["softmax"], 1),
        "linear fc1": ([tok], linear(dim, 4 * dim), 1),
        "gelu": ([hid], layers["gelu"], 1),
        "dropout [B, N, 4D]": ([hid], drop, 1),
        "dropout [B, N, D]": ([tok], drop, 2),
        "linear fc2": ([hid], linear(4 * dim, dim), 1),
        "residual add": ([tok, tok], lambda a, b: a + b, 2),
    }


def _paddle_layers() -> dict:
    import paddle
    import paddle.nn.functional as F

    from rdrop_paddle.models.layers import Dropout, LayerNorm, Linear

    paddle.seed(0)
    return {"linear": Linear, "layer_norm": lambda d: LayerNorm(d, epsilon=1e-6), "dropout": Dropout,
            "gelu": F.gelu, "softmax": lambda t: F.softmax(t, axis=-1),
            "q_kt": lambda q, k: paddle.matmul(q, k, transpose_y=True),
            "tensor": lambda a: paddle.to_tensor(a, stop_gradient=False),
            "no_grad": paddle.no_grad, "ones_like": paddle.ones_like, "version": paddle.__version__}


def _torch_layers() -> dict:
    import torch

    torch.manual_seed(0)
    return {"linear": torch.nn.Linear, "layer_norm": lambda d: torch.nn.LayerNorm(d, eps=1e-6),
            "dropout": torch.nn.Dropout, "gelu": torch.nn.functional.gelu,
            "softmax": lambda t: torch.softmax(t, dim=-1),
            "q_kt": lambda q, k: torch.matmul(q, k.transpose(-2, -1)),
            "tensor": lambda a: torch.tensor(a, requires_grad=True),
            "no_grad": torch.no_grad, "ones_like": torch.ones_like, "version": torch.__version__}


def measure(layers: dict, shapes: list, op, repeats: int) -> tuple:
    """(forward ms, forward + backward ms) of ``op`` on random inputs of ``shapes``."""
    import numpy as np

    rng = np.random.default_rng(0)
    xs = [layers["tensor"](rng.standard_normal(s).astype("float32")) for s in shapes]

    def forward():
        with layers["no_grad"]():
            op(*xs)

    def forward_backward():
        y = op(*xs)
        y.backward(layers["ones_like"](y))

    return tuple(1e3 * bench.median_seconds(fn, repeats) for fn in (forward, forward_backward))


def worker(fw: str, model: str, batch: int, repeats: int) -> dict:
    """Framework version and, per op, (forward ms, forward + backward ms, uses)."""
    if fw == "paddle":
        from rdrop_paddle.cpu import configure

        configure("cpu")  # before anything imports paddle
    from rdrop_paddle.models.registry import dims

    dim, depth, heads = dims(model)
    layers = _paddle_layers() if fw == "paddle" else _torch_layers()
    ops = _block_ops(layers, dim, heads, 197, batch)
    return {"version": layers["version"], "depth": depth,
            "ops": {name: (*measure(layers, shapes, op, repeats), uses)
                    for name, (shapes, op, uses) in ops.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--worker", choices=("paddle", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        bench.emit(worker(args.worker, args.model, args.batch, args.repeats))
        return
    configure_environment()  # what the workers inherit (and what the header reports)
    flags = [f"--model={args.model}", f"--batch={args.batch}", f"--repeats={args.repeats}"]
    times = {fw: bench.run_worker(os.path.abspath(__file__), ["--worker", fw, *flags])
             for fw in ("paddle", "torch")}
    print(f"{bench.machine()}\n{args.model}, batch {args.batch}, 197 tokens; Paddle "
          f"{times['paddle']['version']}, PyTorch {times['torch']['version']}")
    print("| op | uses | Paddle fwd ms | PyTorch fwd ms | Paddle fwd+bwd ms | PyTorch fwd+bwd ms "
          "| Paddle - PyTorch per step, ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    depth = times["paddle"]["depth"]
    for name, (pf, pb, uses) in times["paddle"]["ops"].items():
        tf, tb, _ = times["torch"]["ops"][name]
        print(f"| {name} | {uses} | {pf:.2f} | {tf:.2f} | {pb:.2f} | {tb:.2f} | {depth * uses * (pb - tb):+.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
