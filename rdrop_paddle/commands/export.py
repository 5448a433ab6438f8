"""Export a checkpoint: ``python tools/export_model.py -c CONFIG --out DIR [--onnx]``.

Loads ``Model.pretrained`` (unless ``Global.output_dir`` holds a trained run, which wins with a
notice; default: the run's ``best_ema.pdparams`` if it kept an EMA and
``--no-ema`` is not given, else ``best.pdparams``) into the eval-mode model and writes the
inference files of the installed Paddle plus ``infer_cfg.json`` (image size, normalisation,
evaluation resize and ``crop_pct``, class names) into ``--out``; with ``--onnx`` also
``inference.onnx`` (paddle2onnx); PaddleClas's ``inference.yml`` and ``label_list.txt`` always, so
that its ``deploy/python/predict_cls.py`` reads the folder as it is.  The class names are the run's own (recorded in its checkpoints),
so a run's folder exports without its data; with ``Model.pretrained`` they come from ``Data``.
"""
from __future__ import annotations

import os

from rdrop_paddle.commands.hub_weights import resolve_pretrained
from rdrop_paddle.commands.model import (best_weights, is_text, load_weights, model_from_config, prefer_the_run,
                                         text_dir, with_classes)
from rdrop_paddle.config.load import load_config
from rdrop_paddle.data import class_names
from rdrop_paddle.errors import UserInputError


def run_class_names(cfg) -> list[str]:
    """The class names the run recorded (its newest checkpoint's manifest) when exporting the
    run's own best weights, so that no data needs to be at hand; else those of ``cfg.Data``."""
    from rdrop_paddle.engine.checkpoint import CheckpointManager, Damaged, manifest

    if not cfg.Model.pretrained:
        runs = CheckpointManager(cfg.Global.output_dir, 1)
        for step in reversed(runs.steps()):
            try:
                names = manifest(runs.path(step))["class_names"]
            except Damaged:
                continue
            if names:
                return names
    return class_names(cfg.Data)


def run(args) -> None:
    import paddle

    from rdrop_paddle.deploy.export import export

    cfg = prefer_the_run(resolve_pretrained(load_config(args.config, args.override)))
    if args.precision == "int8":
        from rdrop_paddle.deploy.quantize import check_int8_export

        if is_text(cfg.Model):
            raise UserInputError("--precision int8 is built for image models; export text models in fp32")
        check_int8_export(args.calib_images)  # before anything is written
        args.onnx = True
    paddle.set_device("cpu")
    path, names = best_weights(cfg, args.no_ema), run_class_names(cfg)
    cfg = with_classes(cfg, names)
    model = model_from_config(cfg.Model, text_dir(cfg))
    load_weights(model, path)
    if is_text(cfg.Model):
        from rdrop_paddle.deploy.text import export_text

        files = export_text(model, args.out, text_dir(cfg), names, cfg.Data.max_seq_len,
                            {"model": cfg.Model.name, "weights": path}, args.opset if args.onnx else None,
                            args.add_softmax)
        print(f"exported {cfg.Model.name} from {path} to {args.out}: {', '.join(files)}")
        return
    extra = {"model": cfg.Model.name, "weights": path, "crop_pct": cfg.Data.crop_pct, "resize": cfg.Data.interpolation}
    files = export(model, args.out, cfg.Model.image_size, model.in_chans, names, extra,
                   onnx_opset=args.opset if args.onnx else None, add_softmax=args.add_softmax)
    if args.precision == "int8":
        from rdrop_paddle.deploy.predictor import Preprocess
        from rdrop_paddle.deploy.quantize import calibration_batches, quantize_openvino

        batches = calibration_batches(calibration_images(args.calib_images), Preprocess(args.out))
        files += [os.path.basename(quantize_openvino(args.out, batches))]
        print(f"int8: calibrated on {len(batches)} images of {args.calib_images}")
    print(f"exported {cfg.Model.name} from {path} to {args.out}: {', '.join(files)}")


def calibration_images(folder: str) -> list[str]:
    """The images of ``folder`` and of its sub-folders one level down (class folders), sorted."""
    from rdrop_paddle.deploy.predictor import list_images

    subfolders = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    found = list_images([folder], []) if not subfolders else []
    for sub in subfolders:
        found += list_images([sub], [])
    return found
