"""Top-1 of an exported image model on a held-out folder, per backend and precision, to check
that int8 keeps its accuracy (``tools/export_model.py --precision int8 --calib-images TRAIN``).

    python benchmarks/int8_top1.py --model-dir EXPORTED --images VAL_DIR

``VAL_DIR`` holds one folder per class, named as the model's classes.  Prints top-1 and the
largest |logit difference| to Paddle Inference fp32 for every backend whose package is installed.
"""
import argparse
import os

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
import numpy as np

RUNS = (("paddle", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8"))


def main() -> None:
    from rdrop_paddle.cpu.process import configure_environment, quiet_start

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--images", required=True, help="held-out images, one folder per class")
    args = parser.parse_args()
    configure_environment()
    with quiet_start():
        import paddle  # noqa: F401
    from rdrop_paddle.deploy.predictor import Predictor, list_images
    from rdrop_paddle.errors import UserInputError

    paths, truth = [], []
    for name in sorted(os.listdir(args.images)):
        if os.path.isdir(os.path.join(args.images, name)):
            found = list_images([os.path.join(args.images, name)], [])
            paths, truth = paths + found, truth + [name] * len(found)
    reference = None
    print(f"| backend | precision | top-1 ({len(paths)} images) | max abs logit diff |\n| --- | --- | --- | --- |")
    for backend, precision in RUNS:
        try:
            predictor = Predictor(args.model_dir, backend=backend, precision=precision)
        except UserInputError as e:
            print(f"| {backend} | {precision} | {e} | |")
            continue
        logits = predictor.logits(paths, 64)
        reference = logits if reference is None else reference
        names = [predictor.cfg["class_names"][k] for k in logits.argmax(1)]
        top1 = 100.0 * np.mean([a == b for a, b in zip(names, truth)])
        print(f"| {backend} | {precision} | {top1:.2f} | {np.abs(logits - reference).max():.1e} |", flush=True)


if __name__ == "__main__":
    main()
