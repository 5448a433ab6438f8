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

from rdrop_paddle.commands.hub_weights import resolve_pretrained
from rdrop_paddle.commands.model import best_weights, load_weights, prefer_the_run, with_classes
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

    from rdrop_paddle.tasks import task_of

    cfg = prefer_the_run(resolve_pretrained(load_config(args.config, args.override)))
    task = task_of(cfg)
    paddle.set_device("cpu")
    path, names = best_weights(cfg, args.no_ema), run_class_names(cfg)
    cfg = with_classes(cfg, names)
    model = task.model(cfg)
    load_weights(model, path)
    files = task.export(cfg, model, args.out, names, path, args)
    print(f"exported {cfg.Model.name} from {path} to {args.out}: {', '.join(files)}")
