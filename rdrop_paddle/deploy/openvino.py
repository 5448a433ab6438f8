"""OpenVINO on CPU: the exported ``inference.onnx`` in fp32 (or bf16 on CPUs with it), and the
int8 model ``tools/export_model.py --precision int8`` writes (``inference.int8.xml``/``.bin``,
post-training quantised by NNCF).  OpenVINO is an optional install: without it the tools stop
with one line naming ``pip install openvino``."""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from rdrop_paddle.deploy.onnx import ONNX_FILE
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.utils.capture import filtered_output

INT8_FILE = "inference.int8.xml"  # and inference.int8.bin beside it
PRECISIONS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8: the quantised graph, other ops in f32


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise UserInputError("--backend openvino needs OpenVINO: pip install openvino") from None
    return openvino


def openvino_session(model_dir: str, precision: str = "fp32", cpu_threads: int | None = None) -> Callable:
    """A function from a float32 ``[N, C, H, W]`` batch (or a dict of named inputs) to logits,
    by OpenVINO on CPU: ``inference.onnx`` for fp32/bf16, ``inference.int8.xml`` for int8."""
    ov = import_openvino()
    name = INT8_FILE if precision == "int8" else ONNX_FILE
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        how = "--precision int8 --calib-images DIR" if precision == "int8" else "--onnx"
        raise UserInputError(f"{model_dir} has no {name}; export with tools/export_model.py ... {how}")
    config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"}
    if cpu_threads:
        config["INFERENCE_NUM_THREADS"] = cpu_threads
    try:  # its frontends log parse attempts (absl, TensorFlow) on the way: our error says it all
        with filtered_output(lambda line: False, keep_on_failure=False):
            compiled = ov.Core().compile_model(path, "CPU", config)
    except Exception as e:  # a damaged file or an unsupported hint, reported as one of several types
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if not line.startswith("Exception from")), "")
        raise UserInputError(f"{path}: OpenVINO cannot compile it for CPU ({type(e).__name__}: "
                             f"{reason[:300]})") from None
    request = compiled.create_infer_request()
    first = compiled.inputs[0].get_any_name()

    def run(batch) -> np.ndarray:
        feeds = batch if isinstance(batch, dict) else {first: np.ascontiguousarray(batch, dtype=np.float32)}
        return np.array(request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})[0])

    return run
