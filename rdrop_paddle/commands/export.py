"""Export a checkpoint: ``python tools/export_model.py -c CONFIG --out DIR [--onnx]``.

Loads ``Model.pretrained`` (default: the run's ``best_ema.pdparams`` if it kept an EMA and
``--no-ema`` is not given, else ``best.pdparams``) into the eval-mode model and writes the
inference files of the installed Paddle plus ``infer_cfg.json`` (image size, normalisation,
evaluation resize and ``crop_pct``, class names) into ``--out``; with ``--onnx`` also
``inference.onnx`` (paddle2onnx); PaddleClas's ``inference.yml`` and ``label_list.txt`` always, so
that its ``deploy/python/predict_cls.py`` reads the folder as it is.  The class names are the run's own (recorded in its checkpoints),
so a run's folder exports without its data; with ``Model.pretrained`` they come from ``Data``.
"""
from __future__ import annotations

from rdrop_paddle.commands.model import best_weights, is_text, load_weights, model_from_config, text_dir, with_classes
from rdrop_paddle.config.load import load_config
from rdrop_paddle.data import class_names


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

    cfg = load_config(args.config, args.override)
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
    print(f"exported {cfg.Model.name} from {path} to {args.out}: {', '.join(files)}")
