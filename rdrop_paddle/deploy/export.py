"""Export for Paddle Inference: :func:`export` saves the eval-mode model with
``paddle.jit.save`` for inputs ``[None, C, H, W]`` (any batch size), ``infer_cfg.json``
(:mod:`~rdrop_paddle.deploy.folder`), PaddleClas's ``inference.yml`` and ``label_list.txt``
(:mod:`~rdrop_paddle.deploy.paddleclas`) and optionally ``inference.onnx``
(:mod:`~rdrop_paddle.deploy.onnx`), so that prediction preprocesses exactly as evaluation
does without retyping anything."""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import paddle

from rdrop_paddle.data.transforms import MEAN, STD
from rdrop_paddle.deploy.folder import CONFIG, PREFIX, load_infer_config, model_files
from rdrop_paddle.deploy.onnx import check_onnx_export, export_onnx
from rdrop_paddle.deploy.paddleclas import GREY_DIR, colour_to_grey, write_paddleclas_files
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import write_json
from rdrop_paddle.utils.capture import filtered_output


def export(model: paddle.nn.Layer, out_dir: str, image_size: int, in_chans: int,
           class_names: list[str], extra: dict | None = None, onnx_opset: int | None = None,
           add_softmax: bool = False) -> list[str]:
    """Save ``model`` (eval mode; with ``add_softmax`` followed by a softmax), ``infer_cfg.json``
    and PaddleClas's ``inference.yml`` into ``out_dir``, and with ``onnx_opset`` also
    ``inference.onnx``; returns the files.  They are written into a staging
    folder inside ``out_dir`` and renamed into place."""
    def write(staging: str) -> None:
        net = paddle.nn.Sequential(model, paddle.nn.Softmax(axis=-1)) if add_softmax else model
        _write_model(net, staging, image_size, in_chans, class_names,
                     {**(extra or {}), "output": "probabilities" if add_softmax else "logits"}, onnx_opset)
        if in_chans == 1:  # PaddleClas decodes in colour: a copy that takes RGB, for its predictor
            os.mkdir(os.path.join(staging, GREY_DIR))
            _save_program(paddle.nn.Sequential(colour_to_grey(), net), os.path.join(staging, GREY_DIR), image_size, 3,
                          onnx_opset)
        write_paddleclas_files(staging, load_infer_config(staging), os.path.abspath(out_dir))

    return write_staged(model, out_dir, onnx_opset, write)


def write_staged(model: paddle.nn.Layer, out_dir: str, onnx_opset: int | None, write) -> list[str]:
    """Check ``model`` and ``out_dir``, let ``write(staging)`` fill a staging folder inside
    ``out_dir``, rename its files into place; returns them.  A failure leaves ``out_dir`` as it was."""
    if onnx_opset is not None:
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
        write(staging)
        names = sorted(os.listdir(staging))
        for name in names:  # a rename replaces a planted link instead of writing through it
            target = os.path.join(out_dir, name)
            if os.path.isdir(os.path.join(staging, name)) and os.path.lexists(target):
                if os.path.isdir(target) and not os.path.islink(target):  # a previous export's folder
                    os.replace(target, os.path.join(staging, ".previous-" + name))
                else:
                    os.unlink(target)
            os.replace(os.path.join(staging, name), target)
    except OSError as e:
        raise UserInputError(f"cannot write the inference model to {out_dir}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _save_program(model: paddle.nn.Layer, out_dir: str, image_size: int, in_chans: int,
                  onnx_opset: int | None) -> None:
    """``inference.json``/``.pdiparams`` (and ``inference.onnx``) of eval-mode ``model`` in ``out_dir``."""
    model.eval()
    spec = [paddle.static.InputSpec([None, in_chans, image_size, image_size], "float32", "x")]
    with filtered_output(lambda line: _PIR_OUT_WARNING in line):
        paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True),
                        os.path.join(out_dir, PREFIX))
    if onnx_opset is not None:
        export_onnx(*model_files(out_dir), onnx_opset)


def _write_model(model: paddle.nn.Layer, out_dir: str, image_size: int, in_chans: int,
                 class_names: list[str], extra: dict | None, onnx_opset: int | None) -> None:
    _save_program(model, out_dir, image_size, in_chans, onnx_opset)
    write_json({"image_size": image_size, "in_chans": in_chans, "mean": list(MEAN[:in_chans]),
                "std": list(STD[:in_chans]), "resize": "bilinear", "class_names": class_names,
                "paddle": paddle.__version__, **(extra or {})}, os.path.join(out_dir, CONFIG))


# Paddle 3's own F.softmax passes ``out=None`` to its C++ op, which then warns while tracing
_PIR_OUT_WARNING = "Paddle static graph(PIR) not support input out tensor"
