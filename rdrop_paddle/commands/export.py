"""Export a checkpoint: ``python tools/export_model.py -c CONFIG --out DIR [--onnx]``.

Loads ``Model.pretrained`` (default ``Global.output_dir/best.pdparams``) into the
eval-mode model and writes the inference files of the installed Paddle plus
``infer_cfg.json`` (image size, normalisation, class names) into ``--out``; with
``--onnx`` also ``model.onnx`` (paddle2onnx).
"""
from __future__ import annotations

import os

from rdrop_paddle.commands.model import load_weights, model_from_config
from rdrop_paddle.config import load_config
from rdrop_paddle.data import class_names


def run(args) -> None:
    import paddle

    from rdrop_paddle.deploy import export

    cfg = load_config(args.config, args.override)
    paddle.set_device("cpu")
    path = cfg.Model.pretrained or os.path.join(cfg.Global.output_dir, "best.pdparams")
    model = model_from_config(cfg.Model)
    load_weights(model, path)
    files = export(model, args.out, cfg.Model.image_size, model.in_chans, class_names(cfg.Data),
                   {"model": cfg.Model.name, "weights": path}, onnx_opset=args.opset if args.onnx else None)
    print(f"exported {cfg.Model.name} from {path} to {args.out}: {', '.join(files)}")
