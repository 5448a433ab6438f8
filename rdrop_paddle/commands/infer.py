"""Predict images (or texts) with an exported model through the fastest installed backend
(``--backend auto``: OpenVINO, ONNX Runtime, Paddle Inference) or the one named.

    python tools/infer.py --model-dir DIR --images PATH [PATH ...] [--topk 5] [--backend auto|paddle|onnxruntime|openvino]
    python tools/infer.py --model-dir TEXT_DIR --text "a sentence" [--text-file FILE]

Images are PNG/JPEG files or folders of them; preprocessing is the evaluation one, read
from the model's ``infer_cfg.json``.  Prints a table and writes the predictions as JSON.
"""
from __future__ import annotations

import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import make_folder, write_json
from rdrop_paddle.utils.terminal import printable


def run(args) -> None:
    from rdrop_paddle.tasks import exported_task

    if min(args.topk, args.batch_size, args.repeats) < 1 or args.cpu_threads < 0:
        raise UserInputError("--topk, --batch-size and --repeats must be at least 1, --cpu-threads at least 0")
    cores = os.cpu_count() or 1
    if args.cpu_threads > cores:
        raise UserInputError(f"--cpu-threads {args.cpu_threads:,} is more than this machine's {cores} cores")
    if not os.path.isdir(args.model_dir):
        raise UserInputError(f"model folder not found: {args.model_dir}")
    if args.backend == "auto":
        from rdrop_paddle.deploy.predictor import auto_backend

        args.backend = auto_backend(args.model_dir, args.precision, args.device, args.enable_mkldnn)
        print(f"backend: {args.backend} (--backend auto: the fastest installed for {args.precision}; "
              f"--backend paddle|onnxruntime|openvino to choose)")
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out", create=False)
    results, extra, table = exported_task(args.model_dir).predict(args)
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out")
    replaced = os.path.isfile(args.out)
    write_json({"model_dir": args.model_dir, "predictions": results, **extra}, args.out)
    print(table)
    print(f"wrote {printable(args.out)}" + (" (replacing the previous predictions)" if replaced else ""))
