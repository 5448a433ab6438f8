"""Image classification: the ViTs on image folders, file lists, CIFAR-100 and digits."""
from __future__ import annotations

import os

import paddle

from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.tasks.base import Task, check_kind


class ImageClassification(Task):
    samples = "images"

    def model(self, cfg: Config) -> paddle.nn.Layer:
        from rdrop_paddle.models import build_model

        try:
            with paddle.utils.unique_name.guard():
                return build_model(cfg.Model.name, **cfg.Model.kwargs())
        except ValueError as e:
            raise UserInputError(f"Model: {e}") from None

    def in_chans(self, cfg: Config) -> int:
        """Input channels of ``Model.name`` (built without initialising weights)."""
        from rdrop_paddle.models import build_model

        try:
            with paddle.LazyGuard(), paddle.utils.unique_name.guard():
                return build_model(cfg.Model.name, num_classes=1, image_size=cfg.Model.image_size).in_chans
        except ValueError as e:
            raise UserInputError(f"Model: {e}") from None

    def datasets(self, cfg: Config) -> tuple:
        from rdrop_paddle.data import build_datasets, check_input_shape
        check_kind(cfg)
        in_chans = self.in_chans(cfg)
        train, val = build_datasets(cfg.Data, cfg.Model.image_size, cfg.Model.num_classes, in_chans)
        check_input_shape(val, in_chans, cfg.Model.image_size, cfg.Model.name)  # non-empty: build_datasets says so
        return train, val

    def export(self, cfg: Config, model: paddle.nn.Layer, out: str, names: list[str], weights: str, args) -> list[str]:
        """Paddle Inference files, ``infer_cfg.json``, PaddleClas's ``inference.yml``; ONNX with
        ``--onnx``; with ``--precision int8`` an OpenVINO model calibrated on ``--calib-images``."""
        from rdrop_paddle.deploy.export import export

        if args.precision == "int8":
            from rdrop_paddle.deploy.quantize import check_int8_export

            check_int8_export(args.calib_images)  # before anything is written
            args.onnx = True
        extra = {"model": cfg.Model.name, "weights": weights, "crop_pct": cfg.Data.crop_pct,
                 "resize": cfg.Data.interpolation}
        files = export(model, out, cfg.Model.image_size, model.in_chans, names, extra,
                       onnx_opset=args.opset if args.onnx else None, add_softmax=args.add_softmax)
        if args.precision == "int8":
            from rdrop_paddle.deploy.predictor import Preprocess
            from rdrop_paddle.deploy.quantize import calibration_batches, quantize_openvino

            batches = calibration_batches(calibration_images(args.calib_images), Preprocess(out))
            files += [os.path.basename(quantize_openvino(out, batches))]
            print(f"int8: calibrated on {len(batches)} images of {args.calib_images}")
        return files

    def predict(self, args) -> tuple[list[dict], dict, str]:
        """``tools/infer.py``'s images through the exported classifier: the predictions, the JSON's
        other fields (``--benchmark``'s timing) and the table to print."""
        from rdrop_paddle.deploy.predictor import Predictor, list_images
        from rdrop_paddle.utils.terminal import printable

        if args.text or args.text_file:
            raise UserInputError(f"{args.model_dir} holds an image model: pass --images, not --text")
        skipped: list[str] = []
        paths = list_images(args.images, skipped)
        if args.precision == "bf16" and args.backend == "paddle" and (args.device != "cpu" or args.enable_mkldnn is False):
            raise UserInputError("--precision bf16 is Paddle Inference's oneDNN on CPU: use it with --device cpu "
                                 "and without --enable-mkldnn False")
        predictor = Predictor(args.model_dir, args.device, args.backend, args.cpu_threads or None, args.enable_mkldnn,
                              args.precision)
        results = predictor.predict(paths, args.topk, args.batch_size)
        extra = {}
        if args.benchmark:
            from rdrop_paddle.deploy.benchmark import benchmark, report

            extra["benchmark"] = benchmark(predictor, paths, args.batch_size, repeats=args.repeats, topk=args.topk)
            threads = args.cpu_threads or (len(os.sched_getaffinity(0)) if args.backend == "paddle" else "default")
            print(report(extra["benchmark"], os.path.basename(os.path.normpath(args.model_dir)), args.backend, threads,
                         args.enable_mkldnn, args.precision))
        if skipped:
            from rdrop_paddle.data.entries import named

            print(f"skipped {len(skipped)} hidden or non-image entr{'y' if len(skipped) == 1 else 'ies'}: "
                  f"{printable(named(skipped))}")
        k = min(args.topk, len(results[0]["topk"]))
        lines = [f"| image | {' | '.join(f'top-{i + 1}' for i in range(k))} |", "| --- |" + " --- |" * k]
        for r in results:
            cells = " | ".join(f"{printable(t['name'])} ({t['prob']:.3f})" for t in r["topk"])
            lines.append(f"| {printable(os.path.basename(r['image']))} | {cells} |")
        return results, extra, "\n".join(lines)


def calibration_images(folder: str) -> list[str]:
    """The images of ``folder`` and of its sub-folders one level down (class folders), sorted."""
    from rdrop_paddle.deploy.predictor import list_images

    subfolders = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    found = list_images([folder], []) if not subfolders else []
    for sub in subfolders:
        found += list_images([sub], [])
    return found
