"""PaddleClas's view of an exported folder: ``inference.yml`` and ``label_list.txt``.

PaddleClas's predictor (``deploy/python/predict_cls.py``) reads a model folder through a YAML
config: ``Global`` (its predictor options), ``PreProcess.transform_ops`` (its operators) and
``PostProcess`` (``Topk``).  :func:`paddleclas_config` writes the evaluation preprocessing of
``infer_cfg.json`` in those operators — ``ResizeImage`` with the PIL backend (the same resize
as :class:`~rdrop_paddle.data.transforms.EvalTransform`), ``CropImage`` when ``crop_pct < 1``,
``NormalizeImage`` and ``ToCHWImage`` — and the class names both inline (``label_list``, as
PaddleClas's own export writes them) and as the ``class_id_map_file`` it reads
(``id name`` lines).  PaddleClas decodes every image in colour, so a 1-channel model gets no
``inference.yml``.
"""
from __future__ import annotations

import math
import os

import yaml

from rdrop_paddle.io import atomic_write

YML, LABELS = "inference.yml", "label_list.txt"


def paddleclas_config(cfg: dict, model_dir: str, topk: int = 5) -> dict:
    """PaddleClas's inference config of an exported model described by ``cfg`` (``infer_cfg.json``)."""
    size, resample = cfg["image_size"], cfg["resize"]
    if cfg["crop_pct"] >= 1.0:
        ops = [{"ResizeImage": {"size": [size, size], "interpolation": resample, "backend": "pil"}}]
    else:
        ops = [{"ResizeImage": {"resize_short": math.floor(size / cfg["crop_pct"]), "interpolation": resample,
                                "backend": "pil"}},
               {"CropImage": {"size": size}}]
    ops += [{"NormalizeImage": {"scale": 1.0 / 255.0, "mean": list(cfg["mean"]), "std": list(cfg["std"]),
                                "order": "", "channel_num": 3}},
            {"ToCHWImage": None}]
    names = cfg["class_names"]
    return {
        "Global": {"model_name": cfg.get("model", ""), "inference_model_dir": model_dir,
                   "infer_imgs": "", "batch_size": 1, "use_gpu": False, "enable_mkldnn": False,
                   "cpu_num_threads": os.cpu_count() or 1, "ir_optim": True, "use_tensorrt": False,
                   "use_fp16": False, "gpu_mem": 8000, "enable_profile": False, "benchmark": False},
        "PreProcess": {"transform_ops": ops},
        "PostProcess": {"main_indicator": "Topk",
                        "Topk": {"topk": max(1, min(topk, len(names))), "class_id_map_file": LABELS,
                                 "label_list": list(names)}}}


def write_paddleclas_files(out_dir: str, cfg: dict, final_dir: str) -> list[str]:
    """Write ``inference.yml`` and ``label_list.txt`` into ``out_dir`` for a model that will be
    read from ``final_dir``; none for a 1-channel model.  Returns the files written."""
    if cfg["in_chans"] != 3:
        return []

    def yml(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(paddleclas_config(cfg, final_dir), fh, sort_keys=False, allow_unicode=True)

    def labels(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(f"{i} {' '.join(name.split())}\n" for i, name in enumerate(cfg["class_names"]))

    atomic_write(os.path.join(out_dir, YML), yml)
    atomic_write(os.path.join(out_dir, LABELS), labels)
    return [YML, LABELS]
