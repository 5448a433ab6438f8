"""PaddleClas's view of an exported folder: ``inference.yml`` and ``label_list.txt``.

PaddleClas's predictor (``deploy/python/predict_cls.py``) reads a model folder through a YAML
config: ``Global`` (its predictor options), ``PreProcess.transform_ops`` (its operators) and
``PostProcess`` (``Topk``).  :func:`paddleclas_config` writes the evaluation preprocessing of
``infer_cfg.json`` in those operators — ``ResizeImage`` with the PIL backend (the same resize
as :class:`~rdrop_paddle.data.transforms.EvalTransform`), ``CropImage`` when ``crop_pct < 1``,
``NormalizeImage`` and ``ToCHWImage`` — and the class names both inline (``label_list``, as
PaddleClas's own export writes them) and as the ``class_id_map_file`` it reads
(``id name`` lines).  PaddleClas decodes every image in colour, so a 1-channel model is exported
a second time for it, in ``paddleclas/``, behind :class:`ColourToGrey` (the luma a grey model's
own preprocessing takes), and ``inference.yml`` points there.  On a Paddle whose Paddle Inference
fails PaddleClas's predictor (3.3), the config selects PaddleClas's ONNX Runtime path
(:func:`write_paddleclas_files`).
"""
from __future__ import annotations

import math
import os

import yaml

from rdrop_paddle.io import atomic_write

YML, LABELS = "inference.yml", "label_list.txt"
GREY_DIR = "paddleclas"  # a 1-channel model's colour-input copy, for PaddleClas's predictor


def colour_to_grey():
    """A layer taking PaddleClas's ``[N, 3, H, W]`` RGB input (each channel normalised alike) to the
    ``[N, 1, H, W]`` of a grey model: ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``, what
    Pillow's ``convert("L")`` computes (the weights sum to 1, so it commutes with the shared
    normalisation; Pillow also rounds to 8 bits, this does not)."""
    import paddle

    class ColourToGrey(paddle.nn.Layer):
        def forward(self, x):
            return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]

    return ColourToGrey()


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


_PROBE: dict[str, bool] = {}


def paddleclas_inference_works() -> bool:
    """Whether PaddleClas 2.6's Paddle Inference predictor (``deploy/utils/predictor.py``) builds and
    runs a predictor on the installed Paddle, probed once per process on a one-layer model with its
    own calls.  It does on neither Paddle this package supports: on Paddle >= 2.6 it builds
    ``Config(model_dir, "inference")``, which Paddle 2.6 reads as (program file, params file) and
    fails on (``std::bad_alloc``); Paddle 3.3 takes that form but cannot build a PIR program after
    ``Config.enable_memory_optim()``, which it always calls (``Not find predictor_id 0 and pass_name
    memory_optimize_pass``; docs/inference.md has both reproductions)."""
    if "works" not in _PROBE:
        import tempfile

        import numpy as np
        import paddle

        from rdrop_paddle.utils.capture import filtered_output

        with tempfile.TemporaryDirectory(prefix="rdrop-probe-") as folder, filtered_output(lambda line: True, False):
            net = paddle.nn.Linear(2, 2)
            spec = [paddle.static.InputSpec([None, 2], "float32", "x")]
            paddle.jit.save(paddle.jit.to_static(net, input_spec=spec, full_graph=True), os.path.join(folder, "inference"))
            try:
                config = paddle.inference.Config(folder, "inference")  # as PaddleClas does on Paddle >= 2.6
                config.disable_gpu()
                config.set_cpu_math_library_num_threads(1)
                config.disable_glog_info()
                config.switch_ir_optim(True)
                config.enable_memory_optim()
                config.switch_use_feed_fetch_ops(False)
                predictor = paddle.inference.create_predictor(config)
                handle = predictor.get_input_handle(predictor.get_input_names()[0])
                handle.reshape([1, 2])
                handle.copy_from_cpu(np.ones((1, 2), np.float32))
                predictor.run()
                _PROBE["works"] = True
            except Exception:  # Paddle reports it as one of several types (MemoryError on 2.6)
                _PROBE["works"] = False
    return _PROBE["works"]


def write_paddleclas_files(out_dir: str, cfg: dict, final_dir: str, notice=print) -> list[str]:
    """Write ``inference.yml`` and ``label_list.txt`` into ``out_dir`` for a model that will be
    read from ``final_dir`` (a 1-channel model: from its colour-input copy in ``GREY_DIR``, which
    the caller wrote).  Returns the files written.

    Where the installed Paddle cannot run PaddleClas's Paddle Inference predictor
    (:func:`paddleclas_inference_works`), ``inference.yml`` selects its ONNX Runtime predictor
    (``Global.use_onnx``) when the export has ``inference.onnx``, else a notice says how to get one."""
    grey = cfg["in_chans"] == 1
    if grey:
        cfg = {**cfg, "mean": list(cfg["mean"]) * 3, "std": list(cfg["std"]) * 3}
    config = paddleclas_config(cfg, os.path.join(final_dir, GREY_DIR) if grey else final_dir)
    if not paddleclas_inference_works():
        import paddle

        if os.path.isfile(os.path.join(out_dir, GREY_DIR if grey else "", "inference.onnx")):
            config["Global"]["use_onnx"] = True
        else:
            notice(f"notice: PaddleClas's predictor cannot load a Paddle Inference model on Paddle {paddle.__version__} "
                   f"(docs/inference.md); export with --onnx and inference.yml selects its ONNX Runtime predictor")

    def yml(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False, allow_unicode=True)

    def labels(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(f"{i} {' '.join(name.split())}\n" for i, name in enumerate(cfg["class_names"]))

    atomic_write(os.path.join(out_dir, YML), yml)
    atomic_write(os.path.join(out_dir, LABELS), labels)
    return [YML, LABELS]
