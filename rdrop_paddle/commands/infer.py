"""Predict images with an exported model through Paddle Inference or ONNX Runtime.

    python tools/infer.py --model-dir DIR --images PATH [PATH ...] [--topk 5] [--backend onnxruntime]

Images are PNG/JPEG files or folders of them; preprocessing is the evaluation one, read
from the model's ``infer_cfg.json``.  Prints a table and writes the predictions as JSON.
"""
from __future__ import annotations

import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import make_folder, write_json


def run(args) -> None:
    from rdrop_paddle.deploy import Predictor, list_images

    if args.topk < 1 or args.batch_size < 1:
        raise UserInputError("--topk and --batch-size must be at least 1")
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out", create=False)
    paths = list_images(args.images)
    predictor = Predictor(args.model_dir, args.device, args.backend)
    results = predictor.predict(paths, args.topk, args.batch_size)
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out")
    write_json({"model_dir": args.model_dir, "predictions": results}, args.out)
    print(f"| image | {' | '.join(f'top-{k + 1}' for k in range(min(args.topk, len(results[0]['topk']))))} |")
    print("| --- |" + " --- |" * min(args.topk, len(results[0]["topk"])))
    for r in results:
        cells = " | ".join(f"{t['name']} ({t['prob']:.3f})" for t in r["topk"])
        print(f"| {os.path.basename(r['image'])} | {cells} |")
    print(f"wrote {args.out}")
