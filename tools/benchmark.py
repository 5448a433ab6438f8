"""Train-step and eval throughput of the package ViT vs the same ViT in PyTorch, one run.

    python tools/benchmark.py [--models vit_small_patch16_224,vit_base_patch16_224] [--batch 8]

Each measurement runs in its own process (so peak memory is that process's peak RSS):
warm-up steps are excluded, then several repeats of several steps, median reported.
PyTorch runs transformers' ViTForImageClassification with the identical configuration
(eager attention, LayerNorm eps 1e-6, dropout 0.1) and the same work: SGD momentum,
global-norm clip 1.0, R-Drop vit_src loss.  Needs torch and transformers.
The last two columns rerun Paddle with RDROP_MALLOC_TUNING=0 (glibc's own malloc
thresholds): the speed / peak-memory trade-off of the package's malloc tuning.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)

MODES = ["base", "rdrop_concat", "rdrop_twice", "eval"]
SIZES = {"vit_small_patch16_224": (384, 12, 6), "vit_base_patch16_224": (768, 12, 12)}


def _paddle_step(model_name, mode, batch):
    import numpy as np
    import paddle

    from rdrop_paddle.engine.step import forward_loss
    from rdrop_paddle.losses import RDropCrossEntropy
    from rdrop_paddle.models import build_model

    paddle.seed(0)
    net = build_model(model_name, num_classes=100)
    x = paddle.to_tensor(np.random.RandomState(0).randn(batch, 3, 224, 224).astype("float32"))
    y = paddle.to_tensor(np.random.RandomState(1).randint(0, 100, batch))
    if mode == "eval":
        net.eval()

        def step():
            with paddle.no_grad():
                net(x).numpy()
        return step
    opt = paddle.optimizer.Momentum(learning_rate=1e-3, momentum=0.9, parameters=net.parameters(),
                                    grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
    crit = RDropCrossEntropy(0.0 if mode == "base" else 0.3, "vit_src")
    net.train()

    def step():
        out = forward_loss(net, crit, x, y, mode.replace("rdrop_", ""))
        out["loss"].backward()
        opt.step()
        opt.clear_grad(set_to_zero=False)
        float(out["loss"])
    return step


def _torch_step(model_name, mode, batch):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import ViTConfig, ViTForImageClassification

    from rdrop_paddle.alignment.reference import official_vit_src_loss

    dim, depth, heads = SIZES[model_name]
    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
                    intermediate_size=4 * dim, image_size=224, patch_size=16, num_labels=100,
                    layer_norm_eps=1e-6, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.0,
                    attn_implementation="eager")
    net = ViTForImageClassification(cfg)
    x = torch.from_numpy(np.random.RandomState(0).randn(batch, 3, 224, 224).astype("float32"))
    y = torch.from_numpy(np.random.RandomState(1).randint(0, 100, batch))
    if mode == "eval":
        net.eval()

        def step():
            with torch.no_grad():
                net(pixel_values=x).logits.numpy()
        return step
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    net.train()

    def step():
        if mode == "base":
            loss = F.cross_entropy(net(pixel_values=x).logits, y)
        elif mode == "rdrop_concat":
            p, q = net(pixel_values=torch.cat([x, x])).logits.chunk(2)
            loss = official_vit_src_loss(p, q, y, 0.3)
        else:
            loss = official_vit_src_loss(net(pixel_values=x).logits, net(pixel_values=x).logits, y, 0.3)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        float(loss)
    return step


def measure(framework, model_name, mode, batch, warmup, repeats, steps) -> dict:
    step = (_paddle_step if framework == "paddle" else _torch_step)(model_name, mode, batch)
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ips": statistics.median(rates), "peak_mb": peak_mb}


def versions() -> str:
    import paddle
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores; Python {platform.python_version()}, "
            f"Paddle {paddle.__version__}, PyTorch {torch.__version__}; "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
            f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}, "
            f"FLAGS_use_stride_kernel={os.environ.get('FLAGS_use_stride_kernel')}; {time.strftime('%Y-%m-%d')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(SIZES))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "MODEL", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker, args.batch, args.warmup, args.repeats, args.steps)))
        return
    print(versions())
    print(f"batch {args.batch}, 224 px, fp32; {args.warmup} warm-up steps, median of "
          f"{args.repeats} x {args.steps} steps\n")
    print("| model | work | Paddle img/s | PyTorch img/s | Paddle/PyTorch | Paddle peak MB "
          "| PyTorch peak MB | Paddle, glibc malloc: img/s | peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in args.models.split(","):
        results = {}
        for mode in args.modes.split(","):
            for label, fw, env in (("paddle", "paddle", {}), ("torch", "torch", {}),
                                   ("paddle_glibc", "paddle", {"RDROP_MALLOC_TUNING": "0"})):
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", fw, model, mode]
                cmd += [f"--{k}={getattr(args, k)}" for k in ("batch", "warmup", "repeats", "steps")]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     env={**os.environ, **env})
                results[label, mode] = json.loads(out.stdout.strip().splitlines()[-1])
            pd, th, pg = (results[fw, mode] for fw in ("paddle", "torch", "paddle_glibc"))
            print(f"| {model} | {mode} | {pd['ips']:.2f} | {th['ips']:.2f} | {pd['ips'] / th['ips']:.2f}x "
                  f"| {pd['peak_mb']:.0f} | {th['peak_mb']:.0f} | {pg['ips']:.2f} | {pg['peak_mb']:.0f} |",
                  flush=True)
        for fw in ("paddle", "torch"):
            if (fw, "base") in results and (fw, "rdrop_concat") in results:
                ratio = results[fw, "base"]["ips"] / results[fw, "rdrop_concat"]["ips"]
                print(f"{model}: {fw} R-Drop (concat) step time / base step time = {ratio:.2f}")

if __name__ == "__main__":
    main()
