"""Export for Paddle Inference, and prediction with it.

:func:`export` saves the eval-mode model with ``paddle.jit.save`` for inputs
``[None, C, H, W]`` (any batch size) under PaddleClas's names: Paddle 3 writes
``inference.json`` (PIR) and ``inference.pdiparams``, Paddle 2.6 ``inference.pdmodel`` and
``inference.pdiparams`` (folders of earlier releases, ``model.*``, are still read).  Beside
them ``infer_cfg.json`` records what prediction needs: image size, channels, normalisation,
resize interpolation and ``crop_pct``, class names, and whether the graph ends in a softmax,
so that :class:`Predictor` preprocesses exactly as evaluation does
(:class:`~rdrop_paddle.data.transforms.EvalTransform`) without retyping anything; for
PaddleClas's predictor, ``inference.yml`` and ``label_list.txt``
(:mod:`rdrop_paddle.deploy_paddleclas`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Callable

import numpy as np
import paddle

from rdrop_paddle.config import MAX_IMAGE_SIZE
from rdrop_paddle.data.decode import IMAGE_EXTENSIONS, is_image_file, read_image
from rdrop_paddle.data.entries import hidden
from rdrop_paddle.data.transforms import INTERPOLATION, MEAN, STD, EvalTransform
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import write_json
from rdrop_paddle.utils.capture import filtered_output

PREFIX, CONFIG = "inference", "infer_cfg.json"
LEGACY_PREFIX = "model"  # the names of releases before 0.3


def export(model: paddle.nn.Layer, out_dir: str, image_size: int, in_chans: int,
           class_names: list[str], extra: dict | None = None, onnx_opset: int | None = None,
           add_softmax: bool = False) -> list[str]:
    """Save ``model`` (eval mode; with ``add_softmax`` followed by a softmax), ``infer_cfg.json``
    and PaddleClas's ``inference.yml`` into ``out_dir``, and with ``onnx_opset`` also
    ``inference.onnx``; returns the files.  They are written into a staging
    folder inside ``out_dir`` and renamed into place."""
    if onnx_opset is not None:
        from rdrop_paddle.deploy_onnx import check_onnx_export

        check_onnx_export(onnx_opset)  # before anything is written
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserInputError(f"{out_dir} is a file, not a folder for the inference model")
    if not all(np.isfinite(p.numpy()).all() for p in model.parameters()):
        raise UserInputError("the weights hold NaN or infinity: refusing to export them")
    try:
        os.makedirs(out_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".export-", dir=out_dir)
    except OSError as e:
        raise UserInputError(f"cannot create {out_dir}: {e.strerror or e}") from None
    try:
        if add_softmax:
            model = paddle.nn.Sequential(model, paddle.nn.Softmax(axis=-1))
        extra = {**(extra or {}), "output": "probabilities" if add_softmax else "logits"}
        _write_model(model, staging, image_size, in_chans, class_names, extra, onnx_opset)
        from rdrop_paddle.deploy_paddleclas import write_paddleclas_files

        write_paddleclas_files(staging, load_infer_config(staging), os.path.abspath(out_dir))
        names = sorted(os.listdir(staging))
        for name in names:  # a rename replaces a planted link instead of writing through it
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    except OSError as e:
        raise UserInputError(f"cannot write the inference model to {out_dir}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _write_model(model: paddle.nn.Layer, out_dir: str, image_size: int, in_chans: int,
                 class_names: list[str], extra: dict | None, onnx_opset: int | None) -> None:
    model.eval()
    spec = [paddle.static.InputSpec([None, in_chans, image_size, image_size], "float32", "x")]
    with filtered_output(lambda line: _PIR_OUT_WARNING in line):
        paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True),
                        os.path.join(out_dir, PREFIX))
    write_json({"image_size": image_size, "in_chans": in_chans, "mean": list(MEAN[:in_chans]),
                "std": list(STD[:in_chans]), "resize": "bilinear", "class_names": class_names,
                "paddle": paddle.__version__, **(extra or {})}, os.path.join(out_dir, CONFIG))
    if onnx_opset is not None:
        from rdrop_paddle.deploy_onnx import export_onnx

        export_onnx(*model_files(out_dir), onnx_opset)


# Paddle 3's own F.softmax passes ``out=None`` to its C++ op, which then warns while tracing
_PIR_OUT_WARNING = "Paddle static graph(PIR) not support input out tensor"


def model_files(model_dir: str) -> tuple[str, str]:
    """The program (``.json`` or ``.pdmodel``) and weights of the exported model in ``model_dir``."""
    for prefix in (PREFIX, LEGACY_PREFIX):
        for ext in (".json", ".pdmodel"):
            if os.path.isfile(os.path.join(model_dir, prefix + ext)):
                return os.path.join(model_dir, prefix + ext), os.path.join(model_dir, prefix + ".pdiparams")
    raise UserInputError(f"{model_dir} holds no exported model ({PREFIX}.json or {PREFIX}.pdmodel); "
                         f"run tools/export_model.py first")


def load_infer_config(model_dir: str) -> dict:
    path = os.path.join(model_dir, CONFIG)
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except FileNotFoundError:
        raise UserInputError(f"{model_dir} has no {CONFIG}; export the model with tools/export_model.py") from None
    except ValueError as e:
        raise UserInputError(f"{path}: not valid JSON ({e})") from None
    except (OSError, RecursionError) as e:
        raise UserInputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    missing = [k for k in ("image_size", "in_chans", "mean", "std", "class_names")
               if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise UserInputError(f"{path}: not an inference config (no {', '.join(missing)})")
    _check_infer_config(cfg, path)
    return cfg


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_infer_config(cfg: dict, path: str) -> None:
    """Each value of ``infer_cfg.json`` of the type and range prediction needs."""
    size, chans = cfg["image_size"], cfg["in_chans"]
    problems = []
    if not (_is_int(size) and 1 <= size <= MAX_IMAGE_SIZE):
        problems.append(f"image_size {size!r} is not an integer in [1, {MAX_IMAGE_SIZE}]")
    if chans not in (1, 3) or not _is_int(chans):
        problems.append(f"in_chans {chans!r} is not 1 or 3")
    for key in ("mean", "std"):
        v = cfg[key]
        if not (isinstance(v, list) and len(v) == chans and
                all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v)):
            problems.append(f"{key} is not a list of {chans!r} finite numbers")
        elif key == "std" and min(v) <= 0:
            problems.append("std has a value <= 0")
    names = cfg["class_names"]
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        problems.append("class_names is not a list of strings")
    crop = cfg.setdefault("crop_pct", 1.0)
    if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0.0 < crop <= 1.0 \
            or (_is_int(size) and size / crop > MAX_IMAGE_SIZE):
        problems.append(f"crop_pct {crop!r:.40} is not a number in (0, 1] that keeps image_size / crop_pct "
                        f"within {MAX_IMAGE_SIZE}")
    if cfg.setdefault("output", "logits") not in ("logits", "probabilities"):
        problems.append(f"output {cfg['output']!r:.40} is not logits or probabilities")
    if cfg.setdefault("resize", "bilinear") not in INTERPOLATION:
        problems.append(f"resize {cfg['resize']!r:.40} is not one of {', '.join(INTERPOLATION)}")
    if problems:
        raise UserInputError(f"{path}: " + "; ".join(problems)[:300])


def list_images(paths: list[str], skipped: list[str] | None = None) -> list[str]:
    """Image files among ``paths``, folders expanded (one level, sorted); a folder's hidden
    entries (``._x.jpg``, ``.DS_Store``) and other files are left out, and appended to
    ``skipped`` if given."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            found = [os.path.join(path, f) for f in names if not hidden(f) and is_image_file(f)]
            if skipped is not None:
                skipped += [os.path.join(path, f) for f in names if hidden(f) or not is_image_file(f)]
            if not found:
                raise UserInputError(f"{path}: folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            raise UserInputError(f"image not found: {path}")
    return files


def paddle_inference_session(model_dir: str, device: str = "cpu", cpu_threads: int | None = None,
                             mkldnn: bool | None = None, precision: str = "fp32") -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 ``[N, C, H, W]`` batch to logits, by Paddle Inference.
    On CPU: ``cpu_threads`` (default: the cores this process may use) and ``mkldnn``
    (oneDNN kernels on or off; None keeps Paddle's default)."""
    config = paddle.inference.Config(*model_files(model_dir))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads or len(os.sched_getaffinity(0)))
        if mkldnn or precision == "bf16":
            config.enable_mkldnn()
        elif mkldnn is False:
            config.disable_mkldnn()
        if precision == "bf16":  # oneDNN bfloat16 kernels: AMX / AVX512-BF16 CPUs
            config.enable_mkldnn_bfloat16()
    config.disable_glog_info()
    try:
        predictor = paddle.inference.create_predictor(config)
    except Exception as e:  # Paddle reports a damaged model file as one of several types
        raise UserInputError(f"{model_dir}: the exported model cannot be loaded "
                             f"({type(e).__name__}: {str(e)[:300]})") from None

    def run(batch: np.ndarray) -> np.ndarray:
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(batch.shape))
        handle.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        try:
            predictor.run()
        except (ValueError, RuntimeError) as e:  # Paddle's shape checks, as one of these
            reason = next((line.strip() for line in str(e).splitlines() if "Error" in line), str(e))
            raise UserInputError(f"{model_dir}: the exported model cannot run on {list(batch.shape[1:])} "
                                 f"(C, H, W) inputs, the size its infer_cfg.json gives; re-export it "
                                 f"({reason[:200]})") from None
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    return run


class Predictor:
    """An exported model on image files: ``logits(paths)`` and ``predict(paths, topk)``, by
    Paddle Inference (``backend="paddle"``) or ONNX Runtime (``"onnxruntime"``, on
    ``inference.onnx``), with the preprocessing of ``infer_cfg.json``."""

    def __init__(self, model_dir: str, device: str = "cpu", backend: str = "paddle",
                 cpu_threads: int | None = None, mkldnn: bool | None = None, precision: str = "fp32") -> None:
        if not os.path.isdir(model_dir):
            raise UserInputError(f"model folder not found: {model_dir}")
        self.cfg = load_infer_config(model_dir)
        if backend == "onnxruntime":
            from rdrop_paddle.deploy_onnx import onnxruntime_session

            self.run = onnxruntime_session(model_dir, cpu_threads)
        else:
            self.run = paddle_inference_session(model_dir, device, cpu_threads, mkldnn, precision)
        self.transform = EvalTransform(self.cfg["image_size"], self.cfg["mean"], self.cfg["std"],
                                       self.cfg["crop_pct"], self.cfg["resize"])

    def preprocess(self, paths: list[str]) -> np.ndarray:
        """The ``[N, C, H, W]`` float32 batch of ``paths``, preprocessed as evaluation is."""
        return np.stack([self.transform(read_image(p, self.cfg["in_chans"])) for p in paths])

    def logits(self, paths: list[str], batch_size: int = 32) -> np.ndarray:
        return np.concatenate([self.run(self.preprocess(paths[i:i + batch_size]))
                               for i in range(0, len(paths), batch_size)])

    def predict(self, paths: list[str], topk: int = 5, batch_size: int = 32) -> list[dict]:
        """Per image: its top-k classes with names and probabilities, and the logits (or, for a
        model exported with a softmax, the probabilities)."""
        return self.postprocess(paths, self.logits(paths, batch_size), topk)

    def postprocess(self, paths: list[str], logits: np.ndarray, topk: int) -> list[dict]:
        """Top-k names and probabilities per image from the model's outputs (non-finite ones refused)."""
        output = self.cfg["output"]
        if not np.isfinite(logits).all():
            bad = paths[int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])]
            raise UserInputError(f"the model gives non-finite {output} (first for {bad}): its weights "
                                 f"are not usable; nothing was written")
        if output == "probabilities":
            probs = logits
        else:
            z = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        names, results = self.cfg["class_names"], []
        for path, row, p in zip(paths, logits, probs):
            top = np.argsort(-row, kind="stable")[:topk]
            results.append({"image": path, "topk": [
                {"class": int(c), "name": names[c] if c < len(names) else str(c), "prob": float(p[c])}
                for c in top], output: row.tolist()})
        return results
