"""ONNX: convert an exported model with paddle2onnx, and run it with ONNX Runtime.

Both are optional installs (``pip install paddle2onnx onnxruntime``); without them the
command stops with one line naming the install.  paddle2onnx's optimizer pass (polygraphy)
is left off: it tries to ``pip install`` packages of its own while exporting, and the
graph it starts from is already the traced inference program.  Its progress lines are
shown only if it fails.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import atomic_write
from rdrop_paddle.utils.capture import filtered_output

ONNX_FILE, LEGACY_ONNX_FILE = "inference.onnx", "model.onnx"  # the latter: releases before 0.3


def check_onnx_export(opset: int) -> None:
    """paddle2onnx importable and ``opset`` one it writes."""
    try:
        import paddle2onnx  # noqa: F401
    except ImportError:
        raise UserInputError("--onnx needs paddle2onnx: pip install paddle2onnx") from None
    if not 7 <= opset <= 21:
        raise UserInputError(f"--opset {opset}: paddle2onnx exports opsets 7 to 21")


def _no_optimize_tool() -> dict:
    """``optimize_tool="none"`` where paddle2onnx has it (2.x, for Paddle 3 programs); 1.x (the
    one that converts Paddle 2.6 programs) has no such pass and no such argument."""
    import inspect

    import paddle2onnx

    return {"optimize_tool": "none"} if "optimize_tool" in inspect.signature(paddle2onnx.export).parameters else {}


def export_onnx(model_file: str, params_file: str, opset: int = 17) -> str:
    """Write ``inference.onnx`` beside ``model_file`` (a Paddle inference program) and return it."""
    check_onnx_export(opset)
    import paddle2onnx

    out = os.path.join(os.path.dirname(model_file), ONNX_FILE)
    os.environ.setdefault("POLYGRAPHY_AUTOINSTALL_DEPS", "0")

    def convert(tmp: str) -> None:
        try:
            with filtered_output(lambda line: True):  # its progress lines, shown only if it fails
                paddle2onnx.export(model_file, params_file, save_file=tmp, opset_version=opset,
                                   auto_upgrade_opset=False, enable_optimize=False, **_no_optimize_tool())
        except Exception as e:  # paddle2onnx reports unsupported operators in several ways
            raise UserInputError(f"paddle2onnx cannot convert {model_file} at opset {opset}: "
                                 f"{type(e).__name__}: {str(e)[:300]}") from None
        if not os.path.isfile(tmp):
            raise UserInputError(f"paddle2onnx wrote no model for {model_file} (opset {opset})")

    atomic_write(out, convert)
    return out


def onnxruntime_session(model_dir: str, cpu_threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 ``[N, C, H, W]`` batch (or a dict of named inputs) to logits, by ONNX Runtime on CPU
    (``cpu_threads`` intra-op threads; default ONNX Runtime's)."""
    try:
        import onnxruntime
    except ImportError:
        raise UserInputError("--backend onnxruntime needs onnxruntime: pip install onnxruntime") from None
    path = os.path.join(model_dir, ONNX_FILE)
    if not os.path.isfile(path) and os.path.isfile(os.path.join(model_dir, LEGACY_ONNX_FILE)):
        path = os.path.join(model_dir, LEGACY_ONNX_FILE)
    if not os.path.isfile(path):
        raise UserInputError(f"{model_dir} has no {ONNX_FILE}; export with tools/export_model.py ... --onnx")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    if cpu_threads:
        options.intra_op_num_threads = cpu_threads
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # a damaged file is reported as one of several types
        raise UserInputError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {str(e)[:300]})") from None
    name = session.get_inputs()[0].name

    def run(batch) -> np.ndarray:
        if isinstance(batch, dict):  # named inputs (text)
            return session.run(None, {k: np.ascontiguousarray(v) for k, v in batch.items()})[0]
        return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run
