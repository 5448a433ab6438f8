"""CPU inference backends for an exported ViT against PyTorch eager, one process per cell.

    python benchmarks/infer_backends.py [--models vit_base_patch16,vit_small_patch16] [--sizes 224,384]
                                        [--batches 1,8] [--repeats 20] [--json rows.json]

For each model and size a transformers ``ViTForImageClassification`` with seeded random
weights (PyTorch eager, its default SDPA attention) is the anchor; the same weights go through
the package's HF mapper into the package ViT, which is exported (Paddle Inference + ONNX) and
run by every backend below, each cell (backend x batch) in a fresh process: warm-up, then
the median of ``--repeats`` batches.  Each row gives ms per batch, the speed ratio to
PyTorch eager, the largest |logit difference| to Paddle dygraph, the achieved GFLOP/s (the
ViT's forward FLOPs, :func:`cpu_limits.vit_gflop`) and its fraction of the machine's practical
ceiling: the larger 4096^2 sgemm of NumPy's and PyTorch's BLAS, measured in the same run on a
quiet machine (measured again while the load average is above 1), as are the CPU flags
and the theoretical peak.  int8 rows are calibrated on random images (speed only; their
accuracy: ``benchmarks/int8_top1.py``).  A backend whose package is missing is a row
"not installed (pip install ...)".
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
import numpy as np

import cpu_limits
from backend_files import openvino_int8, ort_fused, ort_int8, paddle_int8
from rdrop_paddle.utils import bench

WIDTHS = {"vit_tiny_patch16": (192, 12, 3), "vit_small_patch16": (384, 12, 6), "vit_base_patch16": (768, 12, 12)}
CELLS = {  # key: row label
    "torch": "PyTorch eager (transformers)",
    "torch_compile": "PyTorch torch.compile",
    "auto": "tools/infer.py's default (--backend auto)",
    "paddle": "Paddle Inference (--backend paddle)",
    "paddle_onednn": "Paddle Inference, oneDNN on",
    "paddle_plain": "Paddle Inference, oneDNN off",
    "ort": "ONNX Runtime (--backend onnxruntime)",
    "ort_fused": "ONNX Runtime, transformers optimizer (fused attention, LayerNorm, GELU)",
    "openvino": "OpenVINO fp32 (--backend openvino)",
    "paddle_bf16": "Paddle Inference bf16, oneDNN (--precision bf16)",
    "ort_int8": "ONNX Runtime int8, static QDQ",
    "openvino_int8": "OpenVINO int8, NNCF (--backend openvino --precision int8)",
    "paddle_int8": "Paddle Inference int8 (Paddle's post-training quantisation, what PaddleSlim calls)",
}


def _anchor(model: str, size: int, classes: int):
    import torch
    from transformers import ViTForImageClassification

    from rdrop_paddle.convert.hf import vit_config

    torch.manual_seed(0)
    hidden, layers, heads = WIDTHS[model]
    config = vit_config(hidden, layers, heads, image=size, classes=classes)
    config._attn_implementation = "sdpa"  # what transformers uses unless told otherwise
    net = ViTForImageClassification(config).eval()
    with torch.no_grad():  # a non-zero head, so that logits differences mean something
        net.classifier.weight.normal_(0, 0.02)
    return net


def _batch(size: int, batch: int) -> np.ndarray:
    return np.random.RandomState(size + batch).randn(batch, 3, size, size).astype("float32")


def _optional(build):
    """``build()``, or the row's text when a package it needs is missing."""
    from rdrop_paddle.errors import UserInputError

    try:
        return build()
    except ImportError as e:  # ModuleNotFoundError included
        return f"not installed (pip install {(getattr(e, 'name', None) or 'onnxruntime').split('.')[0]})"
    except UserInputError as e:  # e.g. no inference.onnx: paddle2onnx missing; OpenVINO missing
        text = str(e)
        return f"not installed ({text[text.index('pip install'):]})" if "pip install" in text else f"not available ({e})"


def prepare(model: str, size: int, classes: int, batches: list[int], folder: str) -> dict:
    """Export the anchor's weights into ``folder`` with every model file the cells read, and
    Paddle dygraph's logits of each batch (the reference of the diff column)."""
    import paddle

    from rdrop_paddle.convert import convert_state_dict, target_shapes
    from rdrop_paddle.deploy.export import export
    from rdrop_paddle.models import build_model

    net = _anchor(model, size, classes)
    state, _ = convert_state_dict({k: v.detach().numpy() for k, v in net.state_dict().items()}, "hf",
                                  target_shapes(f"{model}_{size}", classes, size))
    layer = build_model(f"{model}_{size}", num_classes=classes, image_size=size)
    layer.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    layer.eval()
    for b in batches:
        np.save(os.path.join(folder, f"dygraph_{b}.npy"), layer(paddle.to_tensor(_batch(size, b))).numpy())
    export(layer, folder, size, 3, [str(i) for i in range(classes)],
           onnx_opset=17 if importlib.util.find_spec("paddle2onnx") else None)
    calib = [_batch(size, 1000 + i)[:1] for i in range(8)]
    status = {"ort_fused": _optional(lambda: ort_fused(folder, *WIDTHS[model][::2])),
              "ort_int8": _optional(lambda: ort_int8(folder, calib)),
              "openvino_int8": _optional(lambda: openvino_int8(folder, calib)),
              "paddle_int8": paddle_int8(folder, calib)}
    return {k: v for k, v in status.items() if isinstance(v, str)}


def _session(key: str, folder: str, model: str, size: int, classes: int, threads: int):
    from rdrop_paddle.deploy import predictor

    if key.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
        net = _anchor(model, size, classes)
        forward = torch.compile(net) if key == "torch_compile" else net

        def run(batch):
            with torch.inference_mode():
                return forward(pixel_values=torch.from_numpy(batch)).logits.numpy()
        return run
    if key.startswith("ort_"):
        from rdrop_paddle.deploy.onnx import onnxruntime_session

        with tempfile.TemporaryDirectory() as view:  # onnxruntime_session reads inference.onnx of a folder
            os.symlink(os.path.join(folder, "fused.onnx" if key == "ort_fused" else "int8_static.onnx"),
                       os.path.join(view, "inference.onnx"))
            return onnxruntime_session(view, threads)
    if key == "auto":  # what tools/infer.py picks on this machine
        return predictor.session(folder, predictor.auto_backend(folder, "fp32", "cpu", None), "fp32", "cpu", threads)
    backend, precision, mkldnn = {"paddle": ("paddle", "fp32", None), "paddle_onednn": ("paddle", "fp32", True),
                                  "paddle_plain": ("paddle", "fp32", False), "paddle_bf16": ("paddle", "bf16", None),
                                  "ort": ("onnxruntime", "fp32", None), "openvino": ("openvino", "fp32", None),
                                  "openvino_int8": ("openvino", "int8", None)}[key]
    return predictor.session(folder, backend, precision, "cpu", threads, mkldnn)


def cell(key: str, folder: str, model: str, size: int, classes: int, batch: int, threads: int,
         warmup: int, repeats: int) -> dict:
    run = _optional(lambda: _session(key, folder, model, size, classes, threads))
    if isinstance(run, str):
        return {"status": run}
    x = _batch(size, batch)
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run(x)
        times.append(time.perf_counter() - start)
    diff = float(np.abs(np.asarray(out) - np.load(os.path.join(folder, f"dygraph_{batch}.npy"))).max())
    result = {"ms": 1000 * statistics.median(times), "max_abs_diff": diff}
    if key == "auto":
        from rdrop_paddle.deploy.predictor import auto_backend

        result["chose"] = auto_backend(folder, "fp32", "cpu", None)
    return result


def worker(argv: list[str]) -> dict:
    from rdrop_paddle.cpu.process import configure_environment, quiet_start

    configure_environment()
    with quiet_start():  # Paddle's ccache and OMP notices, as the tools drop them
        import paddle  # noqa: F401
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass
    kind, rest = argv[0], json.loads(argv[1])
    if kind == "sgemm":
        return {"gflops": cpu_limits.sgemm_gflops(rest["framework"])}
    if kind == "prepare":
        return {"status": prepare(**rest)}
    return cell(**rest)


def _spawn(kind: str, payload: dict) -> dict:
    return bench.run_worker(os.path.abspath(__file__), ["--worker", kind, json.dumps(payload)])


def main() -> None:
    from rdrop_paddle.commands.arguments import count, counts, one_line_errors

    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--models", default="vit_base_patch16,vit_small_patch16")
    parser.add_argument("--sizes", type=counts(16, 4096), default=[224, 384], help="image sizes (ViT-S: 224 only)")
    parser.add_argument("--batches", type=counts(1, 1024), default=[1, 8], help="batch sizes, comma-separated")
    parser.add_argument("--backends", default=",".join(CELLS), help="cells to run, comma-separated")
    parser.add_argument("--classes", type=count(1, 100_000), default=100)
    parser.add_argument("--warmup", type=count(0, 10_000), default=3)
    parser.add_argument("--repeats", type=count(1, 100_000), default=20)
    parser.add_argument("--threads", type=count(1, 1024), default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quiet-waits", type=count(0, 100), default=6,
                        help="times to wait 10 s for a 1-minute load average <= 1 before the sgemm ceiling")
    parser.add_argument("--json", default="")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        bench.emit(worker(args.worker))
        return
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in WIDTHS] + [k for k in args.backends.split(",") if k not in CELLS]
    if unknown:
        parser.error(f"unknown model or backend {unknown[0]!r}; models: {', '.join(WIDTHS)}; backends: {', '.join(CELLS)}")
    flags, cores = cpu_limits.cpu_flags(), args.threads
    peak, formula = cpu_limits.theoretical_peak(cores, flags)
    sgemm, load = cpu_limits.quiet_ceiling(lambda f: _spawn("sgemm", {"framework": f})["gflops"],
                                           waits=args.quiet_waits)
    top = max(sgemm.values())
    print(f"# {bench.machine()}\n# CPU flags: {', '.join(flags) or 'none of ' + ', '.join(cpu_limits.FLAGS)}")
    print(f"# theoretical fp32 peak {f'{peak:.0f} GFLOP/s ({formula})' if peak else formula}; 4096^2 sgemm at "
          f"load {load:.2f}: NumPy {sgemm['numpy']:.0f}, PyTorch {sgemm['torch']:.0f} GFLOP/s (the ceiling below "
          f"is the larger)")
    print("| model | size | batch | backend | ms/batch | x PyTorch eager | max abs logit diff vs dygraph | GFLOP/s "
          "| of ceiling | of peak |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows, loads = [], []
    for model in models:
        hidden, layers, _ = WIDTHS[model]
        for size in (args.sizes if model == "vit_base_patch16" else [224]):
            with tempfile.TemporaryDirectory() as folder:
                status = _spawn("prepare", {"model": model, "size": size, "classes": args.classes,
                                            "batches": args.batches, "folder": folder})["status"]
                for batch in args.batches:
                    anchor = None
                    for key in args.backends.split(","):
                        loads.append(os.getloadavg()[0])
                        result = {"status": status[key]} if key in status else _spawn("cell", {
                            "key": key, "folder": folder, "model": model, "size": size, "classes": args.classes,
                            "batch": batch, "threads": args.threads, "warmup": args.warmup, "repeats": args.repeats})
                        label = CELLS[key] + (f": {result['chose']}" if "chose" in result else "")
                        row = {"model": model, "size": size, "batch": batch, "backend": label, **result}
                        rows.append(row)
                        if "status" in result:
                            print(f"| {model} | {size} | {batch} | {CELLS[key]} | {result['status']} | | | | | |", flush=True)
                            continue
                        anchor = anchor or (result["ms"] if key == "torch" else None)
                        gflops = cpu_limits.vit_gflop(hidden, layers, size, classes=args.classes) * batch / result["ms"] * 1e3
                        row.update(gflops=gflops, speedup=(anchor / result["ms"]) if anchor else None)
                        print(f"| {model} | {size} | {batch} | {label} | {result['ms']:.1f} | "
                              f"{row['speedup'] or float('nan'):.2f} | {result['max_abs_diff']:.1e} | {gflops:.0f} | "
                              f"{gflops / top:.2f} | {f'{gflops / peak:.2f}' if peak else 'n/a'} |", flush=True)
    print(f"# quiet check: 1-minute load average before each cell: max {max(loads):.2f} (a busy machine reads above "
          f"{cores})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"threads": args.threads, "repeats": args.repeats, "flags": flags, "peak_gflops": peak,
                       "sgemm_gflops": sgemm, "sgemm_load": load, "max_load": max(loads), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
