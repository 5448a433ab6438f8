"""Train-step and eval throughput of the package ViT vs the same ViT in PyTorch, one run.

    python benchmarks/benchmark.py [--models vit_small_patch16_224,vit_base_patch16_224] [--batch 8]
    python benchmarks/benchmark.py --recompute [--models ...] [--batch 8]


Each cell runs in its own process (peak memory is that process's peak RSS): warm-up steps,
then the median of several repeats.  PyTorch runs transformers' ViTForImageClassification
with the same configuration (eager attention, LayerNorm eps 1e-6, dropout 0.1) and the same
work: SGD momentum, global-norm clip 1.0, R-Drop vit_src loss.  Extra columns rerun Paddle
with glibc's own malloc (``RDROP_MALLOC_TUNING=0``) and with paddle imported before the
package, then ``rdrop_paddle.cpu.configure()`` (the library user's order).  Needs torch
and transformers.

``--recompute`` measures instead the memory/speed trade-off of ``Model.recompute``: the
package's R-Drop (concat) step with and without recomputing each block in the backward,
peak memory and images/s, and the activation memory per image (the growth of peak memory
from ``--batch`` to twice that, divided by the added images; R-Drop runs each twice).
"""
import argparse
import os
import sys

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cpu import configure_environment
from rdrop_paddle.cpu.info import cpu_info, environment_for
from rdrop_paddle.utils import bench

MODES = ["base", "rdrop_concat", "rdrop_twice", "eval"]
# what configure_environment sets on this CPU, exported before paddle loads (the library user's order)
EXPORTED = {"OMP_NUM_THREADS": str(len(os.sched_getaffinity(0))), **environment_for(cpu_info())}
CELLS = (("paddle", "paddle", {}), ("torch", "torch", {}),
         ("glibc", "paddle", {"RDROP_MALLOC_TUNING": "0"}), ("paddle_first", "paddle_first", EXPORTED))


def _data(batch, image_size=224):
    import numpy as np

    x = np.random.RandomState(0).randn(batch, 3, image_size, image_size).astype("float32")
    y = np.random.RandomState(1).randint(0, 100, batch)
    return x, y


def _paddle_step(model_name, mode, batch, image_size=224):
    import paddle

    from rdrop_paddle.losses import RDropCrossEntropy
    from rdrop_paddle.models import build_model
    from rdrop_paddle.losses.two_pass import rdrop_forward

    paddle.seed(0)
    net = build_model(model_name, num_classes=100, image_size=image_size, recompute=mode.endswith("_recompute"))
    x, y = (paddle.to_tensor(a) for a in _data(batch, image_size))
    if mode == "eval":
        net.eval()
        return lambda: net(x).numpy()
    opt = paddle.optimizer.Momentum(learning_rate=1e-3, momentum=0.9, parameters=net.parameters(),
                                    grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    crit = RDropCrossEntropy(0.0 if mode == "base" else 0.3, "vit_src")
    net.train()

    def step():
        out = rdrop_forward(net, crit, x, y, mode.split("_")[1] if mode != "base" else "concat")
        out["loss"].backward()
        opt.step()
        opt.clear_grad(set_to_zero=False)
        return float(out["loss"])
    return step


def _torch_step(model_name, mode, batch):
    import torch
    import torch.nn.functional as F
    from transformers import ViTForImageClassification

    from rdrop_paddle.alignment.reference import official_vit_src_loss
    from rdrop_paddle.convert.hf import vit_config
    from rdrop_paddle.models.registry import dims

    dim, depth, heads = dims(model_name)
    torch.manual_seed(0)
    net = ViTForImageClassification(vit_config(dim, depth, heads, classes=100, dropout=0.1))
    x, y = (torch.from_numpy(a) for a in _data(batch))
    if mode == "eval":
        net.eval()
        return lambda: net(pixel_values=x).logits.detach().numpy()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    net.train()

    def loss():
        if mode == "base":
            return F.cross_entropy(net(pixel_values=x).logits, y)
        if mode == "rdrop_concat":
            p, q = net(pixel_values=torch.cat([x, x])).logits.chunk(2)
            return official_vit_src_loss(p, q, y, 0.3)
        return official_vit_src_loss(net(pixel_values=x).logits, net(pixel_values=x).logits, y, 0.3)
    return bench.torch_step(net, opt, loss)


def worker(framework, model_name, mode, batch, warmup, repeats, steps, image_size=224) -> dict:
    if framework == "paddle_first":  # a library user: paddle first, then the documented call
        import paddle  # noqa: F401

        from rdrop_paddle.cpu import configure

        configure("cpu")
    else:
        from rdrop_paddle.cpu import configure_environment

        configure_environment()  # what the tools do before paddle loads
        if framework == "paddle":
            from rdrop_paddle.cpu import configure_device

            configure_device("cpu")
    step = _torch_step(model_name, mode, batch) if framework == "torch" else \
        _paddle_step(model_name, mode, batch, image_size)
    seconds = bench.median_seconds(step, repeats, inner=steps, warmup=warmup)
    return {"ips": steps * batch / seconds, "peak_mb": bench.peak_rss_mb()}


def main() -> None:
    from rdrop_paddle.commands.arguments import flag

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vit_small_patch16_224,vit_base_patch16_224")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--image-size", type=int, default=224)
    flag(p, "--recompute", "the Model.recompute trade-off instead")
    p.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "MODEL", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [f"--{k}={getattr(args, k)}" for k in ("batch", "warmup", "repeats", "steps")]
    if args.worker:
        bench.emit(worker(*args.worker, args.batch, args.warmup, args.repeats, args.steps, args.image_size))
        return
    if args.recompute:
        recompute_table(args)
        return
    configure_environment()  # what the workers inherit (and what the header reports)
    print(bench.machine())
    print(f"batch {args.batch}, 224 px, fp32; {args.warmup} warm-up steps, median of "
          f"{args.repeats} x {args.steps} steps\n")
    print("| model | work | Paddle img/s | PyTorch img/s | Paddle/PyTorch | Paddle peak MB | PyTorch peak MB "
          "| glibc malloc: img/s | peak MB | paddle imported first: img/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in args.models.split(","):
        results = {}
        for mode in args.modes.split(","):
            for label, framework, env in CELLS:
                results[label, mode] = bench.run_worker(os.path.abspath(__file__),
                                                        ["--worker", framework, model, mode, *sizes], env)
            pd, th, gl, pf = (results[label, mode] for label, _, _ in CELLS)
            print(f"| {model} | {mode} | {pd['ips']:.2f} | {th['ips']:.2f} | {pd['ips'] / th['ips']:.2f}x "
                  f"| {pd['peak_mb']:.0f} | {th['peak_mb']:.0f} | {gl['ips']:.2f} | {gl['peak_mb']:.0f} "
                  f"| {pf['ips']:.2f} |", flush=True)
        for label in ("paddle", "torch"):
            if (label, "base") in results and (label, "rdrop_concat") in results:
                ratio = results[label, "base"]["ips"] / results[label, "rdrop_concat"]["ips"]
                print(f"{model}: {label} R-Drop (concat) step time / base step time = {ratio:.2f}")
    sys.stdout.flush()


def recompute_table(args) -> None:
    """R-Drop (concat) steps of the package ViT with and without ``recompute``, one process each."""
    configure_environment()
    print(bench.machine())
    print(f"R-Drop concat step, fp32, {args.warmup} warm-up steps, median of {args.repeats} x {args.steps} "
          f"steps; activation memory per sample (two passes) = growth of peak memory from batch "
          f"{args.batch} to {2 * args.batch}, per added sample\n")
    print("| model | px | batch | recompute | img/s | step time ratio | peak MB | peak ratio "
          "| activation MB per sample |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    batches = (args.batch, 2 * args.batch)
    for model in args.models.split(","):
        cells = {}
        for mode in ("rdrop_concat", "rdrop_concat_recompute"):
            for batch in batches:
                cells[mode, batch] = bench.run_worker(os.path.abspath(__file__), [
                    "--worker", "paddle", model, mode, f"--batch={batch}", f"--warmup={args.warmup}",
                    f"--repeats={args.repeats}", f"--steps={args.steps}", f"--image-size={args.image_size}"])
        for batch in batches:
            plain = cells["rdrop_concat", batch]
            for mode in ("rdrop_concat", "rdrop_concat_recompute"):
                cell, small, large = cells[mode, batch], cells[mode, batches[0]], cells[mode, batches[1]]
                per_sample = (large["peak_mb"] - small["peak_mb"]) / (batches[1] - batches[0])
                print(f"| {model} | {args.image_size} | {batch} | {'yes' if mode.endswith('recompute') else 'no'} "
                      f"| {cell['ips']:.2f} | {plain['ips'] / cell['ips']:.2f} | {cell['peak_mb']:.0f} "
                      f"| {cell['peak_mb'] / plain['peak_mb']:.2f} | {per_sample:.0f} |", flush=True)


if __name__ == "__main__":
    main()
