"""Inference backends for an exported ViT on this CPU, against PyTorch eager, in one run.

    python benchmarks/infer_backends.py [--model vit_base_patch16] [--sizes 224,384] [--batches 1,8]
                                   [--repeats 10] [--threads N] [--json out.json]

For each image size: a transformers ``ViTForImageClassification`` (PyTorch eager, its
default SDPA attention) with seeded random weights is the anchor; the same weights go
through the package's HF mapper into the package ViT, which is exported
(``rdrop_paddle.deploy.export``, with ONNX) and run by

- Paddle Inference as ``tools/infer.py --backend paddle`` configures it (IR passes on, oneDNN Paddle's default),
- Paddle Inference with oneDNN on, and with oneDNN off,
- ONNX Runtime as ``tools/infer.py --backend onnxruntime`` configures it (graph optimisation level ALL),
- ONNX Runtime on the model rewritten by ``onnxruntime.transformers.optimizer`` (ViT attention,
  LayerNorm, GELU and bias fusions),
- reduced precision, not eligible as a default (logits move by more than 1e-4): Paddle
  Inference with oneDNN bf16 (``tools/infer.py --precision bf16``; AMX/AVX512-BF16 CPUs), ONNX Runtime with int8 dynamic
  quantisation of the weights (``onnxruntime.quantization.quantize_dynamic``).

``--int8-top1 RUN_DIR`` also exports a quickstart run's ``best.pdparams`` and reports the
top-1 on the digits' held-out split in fp32, int8 (ONNX Runtime) and bf16 (Paddle Inference).

Every cell: warm-up batches, then the median of ``--repeats`` timed batches (ms per image),
speed as a ratio to PyTorch eager at the same size and batch, and the largest absolute
logit difference to PyTorch.  Needs torch, transformers, paddle2onnx and onnxruntime.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
import numpy as np

from rdrop_paddle.errors import UserInputError

WIDTHS = {"vit_tiny_patch16": (192, 12, 3), "vit_small_patch16": (384, 12, 6), "vit_base_patch16": (768, 12, 12)}


def _time(run, batch: np.ndarray, warmup: int, repeats: int) -> tuple[float, np.ndarray]:
    for _ in range(warmup):
        out = run(batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run(batch)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / len(batch), np.asarray(out)


def _torch_anchor(model: str, size: int, classes: int, threads: int):
    import torch
    from transformers import ViTForImageClassification

    from rdrop_paddle.convert.hf import vit_config

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    hidden, layers, heads = WIDTHS[model]
    config = vit_config(hidden, layers, heads, image=size, classes=classes)
    config._attn_implementation = "sdpa"  # what transformers uses unless told otherwise
    net = ViTForImageClassification(config).eval()
    with torch.no_grad():  # a non-zero head, so that logits differences mean something
        net.classifier.weight.normal_(0, 0.02)

    def run(batch):
        with torch.inference_mode():
            return net(pixel_values=torch.from_numpy(batch)).logits.numpy()
    return net, run


def _export(net, model: str, size: int, classes: int, out: str) -> None:
    import paddle

    from rdrop_paddle.convert import convert_state_dict, target_shapes
    from rdrop_paddle.deploy.export import export
    from rdrop_paddle.models import build_model

    source = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    state, _ = convert_state_dict(source, "hf", target_shapes(f"{model}_{size}", classes, size))
    layer = build_model(f"{model}_{size}", num_classes=classes, image_size=size)
    layer.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    export(layer, out, size, 3, [str(i) for i in range(classes)], onnx_opset=17 if _installed("paddle2onnx") else None)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _optional(build):
    """``build()``, or the row's text when an optional package it needs is missing: a row
    marked "not installed" instead of a traceback (the README install has none of them)."""
    try:
        return build()
    except ImportError as e:  # ModuleNotFoundError included
        name = (getattr(e, "name", None) or "onnxruntime").split(".")[0]  # these modules' pip names are their own
        return f"not installed (pip install {name})"
    except UserInputError as e:  # e.g. the folder has no inference.onnx: paddle2onnx missing
        return f"not available ({e})"


def _ort_session(path: str, threads: int):
    """A batch -> logits function of ONNX Runtime on the model file ``path``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = threads, 3
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _ort_fused(model_dir: str, model: str, threads: int):
    from onnxruntime.transformers.optimizer import optimize_model

    hidden, _, heads = WIDTHS[model]
    fused = os.path.join(model_dir, "model.fused.onnx")
    optimize_model(os.path.join(model_dir, "inference.onnx"), model_type="vit", num_heads=heads,
                   hidden_size=hidden, opt_level=1).save_model_to_file(fused)
    return _ort_session(fused, threads)


def _ort_int8(model_dir: str, threads: int):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = os.path.join(model_dir, "model.int8.onnx")
    if not os.path.isfile(int8):
        quantize_dynamic(os.path.join(model_dir, "inference.onnx"), int8, weight_type=QuantType.QInt8)
    return _ort_session(int8, threads)


def reduced_precision_top1(run_dir: str, threads: int) -> dict:
    """Top-1 of a quickstart run's best weights on the digits' held-out split: fp32 and int8
    through ONNX Runtime, fp32 and bf16 through Paddle Inference."""
    from rdrop_paddle.commands.model import load_weights, model_from_config
    from rdrop_paddle.config.load import load_config
    from rdrop_paddle.data import build_datasets
    from rdrop_paddle.deploy.export import export
    from rdrop_paddle.deploy.predictor import paddle_inference_session
    from rdrop_paddle.deploy.onnx import onnxruntime_session

    cfg = load_config(os.path.join(run_dir, "config.yaml"))
    model = model_from_config(cfg.Model)
    load_weights(model, os.path.join(run_dir, "best.pdparams"))
    _, val = build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes, model.in_chans)
    x = np.stack([val[i][0] for i in range(len(val))])
    with tempfile.TemporaryDirectory() as out:
        export(model, out, cfg.Model.image_size, model.in_chans, val.class_names,
               onnx_opset=17 if _installed("paddle2onnx") else None)
        runs = {"onnxruntime fp32": _optional(lambda: onnxruntime_session(out, threads)),
                "onnxruntime int8": _optional(lambda: _ort_int8(out, threads)),
                "paddle fp32": paddle_inference_session(out, cpu_threads=threads),
                "paddle bf16": paddle_inference_session(out, cpu_threads=threads, precision="bf16")}
        top1 = {name: run if isinstance(run, str) else round(100.0 * float((run(x).argmax(1) == val.labels).mean()), 2)
                for name, run in runs.items()}
    return top1 | {
        "images": len(val)}


def main() -> None:
    from rdrop_paddle.commands.arguments import count, counts, one_line_errors
    from rdrop_paddle.cpu.process import configure_environment, quiet_start

    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--model", default="vit_base_patch16", choices=sorted(WIDTHS))
    parser.add_argument("--sizes", type=counts(16, 4096), default=[224, 384], help="image sizes, comma-separated")
    parser.add_argument("--batches", type=counts(1, 1024), default=[1, 8], help="batch sizes, comma-separated")
    parser.add_argument("--classes", type=count(1, 100_000), default=100)
    parser.add_argument("--warmup", type=count(0, 10_000), default=3)
    parser.add_argument("--repeats", type=count(1, 100_000), default=10)
    parser.add_argument("--threads", type=count(1, 1024), default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", default="")
    parser.add_argument("--int8-top1", default="", metavar="RUN_DIR", help="a quickstart run folder")
    args = parser.parse_args()
    configure_environment()
    with quiet_start():  # Paddle's ccache and OMP notices, as the tools drop them
        import paddle  # noqa: F401
    if _installed("onnxruntime"):  # its graph notices (unused initialisers) from every session, the optimiser's too
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    if args.int8_top1 and not os.path.isfile(os.path.join(args.int8_top1, "best.pdparams")):
        parser.error(f"--int8-top1 {args.int8_top1}: not a run folder (no best.pdparams); run the quickstart first")
    if args.int8_top1:
        print(f"top-1 on the quickstart's held-out split: {reduced_precision_top1(args.int8_top1, args.threads)}")

    from rdrop_paddle.deploy.predictor import paddle_inference_session
    from rdrop_paddle.deploy.onnx import onnxruntime_session

    rows = []
    print("| size | batch | backend | ms/img | x PyTorch eager | max abs logit diff |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        net, torch_run = _torch_anchor(args.model, size, args.classes, args.threads)
        with tempfile.TemporaryDirectory() as out:
            _export(net, args.model, size, args.classes, out)
            backends = {
                "PyTorch eager (transformers)": torch_run,
                "Paddle Inference (--backend paddle)": paddle_inference_session(out, cpu_threads=args.threads),
                "Paddle Inference, oneDNN on": paddle_inference_session(out, cpu_threads=args.threads, mkldnn=True),
                "Paddle Inference, oneDNN off": paddle_inference_session(out, cpu_threads=args.threads, mkldnn=False),
                "ONNX Runtime (--backend onnxruntime)": _optional(lambda: onnxruntime_session(out, args.threads)),
                "ONNX Runtime, ViT fusions": _optional(lambda: _ort_fused(out, args.model, args.threads)),
                "Paddle Inference, oneDNN bf16 (reduced precision)": paddle_inference_session(
                    out, cpu_threads=args.threads, precision="bf16"),
                "ONNX Runtime, int8 dynamic (reduced precision)": _optional(lambda: _ort_int8(out, args.threads)),
            }
            for batch_size in args.batches:
                batch = np.random.RandomState(size + batch_size).randn(batch_size, 3, size, size).astype("float32")
                anchor_ms, reference = None, None
                for name, run in backends.items():
                    if isinstance(run, str):
                        rows.append({"size": size, "batch": batch_size, "backend": name, "status": run})
                        print(f"| {size} | {batch_size} | {name} | {run} | | |", flush=True)
                        continue
                    ms, logits = _time(run, batch, args.warmup, args.repeats)
                    if anchor_ms is None:
                        anchor_ms, reference = ms, logits
                    row = {"size": size, "batch": batch_size, "backend": name, "ms_per_image": ms,
                           "speedup": anchor_ms / ms, "max_abs_diff": float(np.abs(logits - reference).max())}
                    rows.append(row)
                    print(f"| {size} | {batch_size} | {name} | {ms:.1f} | {row['speedup']:.2f} | "
                          f"{row['max_abs_diff']:.1e} |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"threads": args.threads, "repeats": args.repeats, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
