"""Post-training int8 of an exported image model, calibrated on the user's own images:
``tools/export_model.py --precision int8 --calib-images DIR``.

NNCF (OpenVINO's compression library) quantises ``inference.onnx`` with its transformer
preset (``ModelType.TRANSFORMER``: the matmuls and their inputs in int8, LayerNorm, softmax
and GELU kept in float) from statistics of up to ``MAX_CALIB`` calibration images,
preprocessed exactly as evaluation does; the result is ``inference.int8.xml``/``.bin``, run by
``tools/infer.py --backend openvino --precision int8``.  Measured in docs/performance.md:
the speed and the top-1 change against fp32.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from rdrop_paddle.deploy.onnx import ONNX_FILE
from rdrop_paddle.deploy.openvino import INT8_FILE, import_openvino
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.utils.capture import filtered_output

MAX_CALIB = 300  # NNCF's default subset size


def check_int8_export(calib_dir: str | None) -> None:
    """The packages and ``--calib-images`` an int8 export needs, before anything is written."""
    import_openvino()
    try:
        import nncf  # noqa: F401
    except ImportError:
        raise UserInputError("--precision int8 needs NNCF: pip install nncf") from None
    if not calib_dir or not os.path.isdir(calib_dir):
        raise UserInputError(f"--precision int8 needs --calib-images DIR, a folder of training images "
                             f"(got {calib_dir!r})")


def calibration_batches(paths: list[str], preprocess, limit: int = MAX_CALIB) -> list[np.ndarray]:
    """``[1, C, H, W]`` arrays of up to ``limit`` images, evenly spaced over the sorted ``paths``."""
    if not paths:
        raise UserInputError("--calib-images holds no image")
    picked = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, num=min(limit, len(paths))).astype(int))]
    return [preprocess([p]) for p in picked]


def _advanced():
    """NNCF's overflow fix on every layer where the CPU has no VNNI (AVX2 only): there the int8
    dot products of u8 x s8 pairs saturate in 16 bits, which NNCF avoids by quantising the
    weights to 7 bits; by default it does so for the first layer only (measured on a 2-core
    AMD EPYC without VNNI: top-1 68.80 -> 67.97 on the own-images model, the fix restores it)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    from rdrop_paddle.cpu.info import cpu_info

    vnni = any(f in cpu_info().flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    return AdvancedQuantizationParameters(overflow_fix=OverflowFix.FIRST_LAYER if vnni else OverflowFix.ENABLE)


def quantize_openvino(model_dir: str, batches: list[np.ndarray]) -> str:
    """Write ``inference.int8.xml``/``.bin`` into ``model_dir`` (staged, then renamed into place)."""
    ov = import_openvino()
    import nncf

    stage = tempfile.mkdtemp(prefix=".int8-", dir=model_dir)
    try:
        with filtered_output(lambda line: True):  # NNCF's progress bars and INFO lines, shown only on failure
            model = ov.Core().read_model(os.path.join(model_dir, ONNX_FILE))
            quantized = nncf.quantize(model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(batches), advanced_parameters=_advanced())
            ov.save_model(quantized, os.path.join(stage, INT8_FILE))
        for name in sorted(os.listdir(stage)):  # the .bin first: the .xml names it
            os.replace(os.path.join(stage, name), os.path.join(model_dir, name))
    except Exception as e:  # NNCF reports unsupported graphs in several ways
        if isinstance(e, UserInputError):
            raise
        raise UserInputError(f"NNCF cannot quantise {os.path.join(model_dir, ONNX_FILE)} "
                             f"({type(e).__name__}: {str(e)[:300]})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return os.path.join(model_dir, INT8_FILE)
