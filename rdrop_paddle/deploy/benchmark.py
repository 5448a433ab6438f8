"""Inference timing per image, as PaddleClas's ``predict_cls.py`` reports it with
``benchmark: True``: preprocess (decode, resize, normalise), inference (the backend's forward)
and postprocess (softmax and top-k), in milliseconds per image, over ``repeats`` batches
after ``warmup`` untimed ones."""
from __future__ import annotations

import time

import numpy as np


def benchmark(predictor, paths: list[str], batch_size: int, warmup: int = 2, repeats: int = 10,
              topk: int = 5) -> dict:
    """Time ``predictor`` (a :class:`~rdrop_paddle.deploy.Predictor`) on batches of the
    first ``batch_size`` of ``paths`` (repeated to fill a batch)."""
    batch = [paths[i % len(paths)] for i in range(batch_size)]
    totals = np.zeros(3)
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        images = predictor.preprocess(batch)
        t1 = time.perf_counter()
        logits = predictor.run(images)
        t2 = time.perf_counter()
        predictor.postprocess(batch, logits, topk)
        t3 = time.perf_counter()
        if i >= warmup:
            totals += (t1 - t0, t2 - t1, t3 - t2)
    per_image = 1000.0 * totals / (repeats * batch_size)
    return {"batch_size": batch_size, "warmup": warmup, "repeats": repeats,
            **dict(zip(("preprocess_ms", "inference_ms", "postprocess_ms"), per_image.tolist())),
            "total_ms": float(per_image.sum())}


def report(stats: dict, model: str, backend: str, threads: int | str, mkldnn: bool | None,
           precision: str = "fp32") -> str:
    """The lines ``--benchmark`` prints."""
    onednn = {None: "default", True: "on", False: "off"}[mkldnn]
    return "\n".join([
        f"benchmark: model: {model}, precision: {precision}, batch_size: {stats['batch_size']}, "
        f"cpu_threads: {threads}, backend: {backend}, oneDNN: {onednn}, warmup: {stats['warmup']}, "
        f"repeats: {stats['repeats']}",
        f"benchmark: preprocess: {stats['preprocess_ms']:.3f} ms/img, inference: {stats['inference_ms']:.3f} "
        f"ms/img, postprocess: {stats['postprocess_ms']:.3f} ms/img, total: {stats['total_ms']:.3f} ms/img, "
        f"ips: {1000.0 / stats['total_ms']:.1f} samples/s"])
