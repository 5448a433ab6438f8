"""Prediction with an exported model: :class:`Predictor` on image files, by Paddle Inference
or ONNX Runtime, preprocessing as evaluation does
(:class:`~rdrop_paddle.data.transforms.EvalTransform`) from the folder's ``infer_cfg.json``."""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import paddle

from rdrop_paddle.data.decode import IMAGE_EXTENSIONS, is_image_file, read_image
from rdrop_paddle.data.entries import hidden
from rdrop_paddle.data.transforms import EvalTransform
from rdrop_paddle.deploy.folder import load_infer_config, model_files
from rdrop_paddle.errors import UserInputError


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
    """A function from a float32 ``[N, C, H, W]`` batch (or a dict of named inputs) to logits, by Paddle Inference.
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

    def run(batch) -> np.ndarray:
        feeds = batch if isinstance(batch, dict) else {predictor.get_input_names()[0]: batch.astype(np.float32)}
        for name, value in feeds.items():  # images: one float32 batch; text: named int64 arrays
            handle = predictor.get_input_handle(name)
            handle.reshape(list(value.shape))
            handle.copy_from_cpu(np.ascontiguousarray(value))
        try:
            predictor.run()
        except (ValueError, RuntimeError) as e:  # Paddle's shape checks, as one of these
            reason = next((line.strip() for line in str(e).splitlines() if "Error" in line), str(e))
            shape = f"{list(batch.shape[1:])} (C, H, W) inputs" if not isinstance(batch, dict) else "these inputs"
            raise UserInputError(f"{model_dir}: the exported model cannot run on {shape}, the size its "
                                 f"infer_cfg.json gives; re-export it ({reason[:200]})") from None
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    return run


class Preprocess:
    """``preprocess(paths)``: the ``[N, C, H, W]`` float32 batch of image files, preprocessed as
    evaluation is, from the ``infer_cfg.json`` of ``model_dir``."""

    def __init__(self, model_dir: str) -> None:
        self.cfg = load_infer_config(model_dir)
        self.transform = EvalTransform(self.cfg["image_size"], self.cfg["mean"], self.cfg["std"],
                                       self.cfg["crop_pct"], self.cfg["resize"])

    def __call__(self, paths: list[str]) -> np.ndarray:
        return np.stack([self.transform(read_image(p, self.cfg["in_chans"])) for p in paths])


BACKENDS = ("auto", "paddle", "onnxruntime", "openvino")


def auto_backend(model_dir: str, precision: str = "fp32", device: str = "cpu", mkldnn: bool | None = None) -> str:
    """The fastest backend installed for ``model_dir`` at ``precision`` (docs/performance.md:
    OpenVINO, then ONNX Runtime, then Paddle Inference): the ONNX runtimes need the export's
    ``inference.onnx``; a GPU, or an explicit ``--enable-mkldnn`` (a Paddle Inference switch),
    means Paddle Inference."""
    import importlib.util

    from rdrop_paddle.deploy.onnx import ONNX_FILE

    def installed(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    if device != "cpu" or mkldnn is not None:
        return "paddle"
    if precision == "int8":
        return "openvino"
    onnx = os.path.isfile(os.path.join(model_dir, ONNX_FILE))
    if onnx and installed("openvino"):
        return "openvino"
    if onnx and precision == "fp32" and installed("onnxruntime"):
        return "onnxruntime"
    return "paddle"
SUPPORTED = {("paddle", "fp32"), ("paddle", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"),
             ("openvino", "bf16"), ("openvino", "int8")}


def session(model_dir: str, backend: str = "paddle", precision: str = "fp32", device: str = "cpu",
            cpu_threads: int | None = None, mkldnn: bool | None = None) -> Callable:
    """The batch -> logits function of ``backend`` (``auto``: :func:`auto_backend`) at
    ``precision`` on the exported ``model_dir``."""
    if backend == "auto":
        backend = auto_backend(model_dir, precision, device, mkldnn)
    if (backend, precision) not in SUPPORTED:
        raise UserInputError(f"--backend {backend} --precision {precision} is not built: int8 runs on "
                             f"--backend openvino (docs/performance.md), bf16 on paddle and openvino")
    if backend != "paddle" and device != "cpu":
        raise UserInputError(f"--backend {backend} runs on CPU here; use --backend paddle for --device {device}")
    if backend == "onnxruntime":
        from rdrop_paddle.deploy.onnx import onnxruntime_session

        return onnxruntime_session(model_dir, cpu_threads)
    if backend == "openvino":
        from rdrop_paddle.deploy.openvino import openvino_session

        return openvino_session(model_dir, precision, cpu_threads)
    return paddle_inference_session(model_dir, device, cpu_threads, mkldnn, precision)


class Predictor:
    """An exported model on image files: ``logits(paths)`` and ``predict(paths, topk)``, by
    Paddle Inference (``backend="paddle"``), ONNX Runtime (``"onnxruntime"``, on
    ``inference.onnx``) or OpenVINO (``"openvino"``; ``precision="int8"`` runs the
    ``inference.int8.xml`` an int8 export wrote), with the preprocessing of ``infer_cfg.json``."""

    def __init__(self, model_dir: str, device: str = "cpu", backend: str = "paddle",
                 cpu_threads: int | None = None, mkldnn: bool | None = None, precision: str = "fp32") -> None:
        if not os.path.isdir(model_dir):
            raise UserInputError(f"model folder not found: {model_dir}")
        self.preprocess = Preprocess(model_dir)
        self.cfg = self.preprocess.cfg
        self.run = session(model_dir, backend, precision, device, cpu_threads, mkldnn)

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
