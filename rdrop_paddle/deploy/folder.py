"""The exported folder: which files hold the program and weights, and ``infer_cfg.json``,
the record of what prediction needs (image size, channels, normalisation, resize
interpolation and ``crop_pct``, class names, whether the graph ends in a softmax), each
value checked before use.  Paddle 3 writes ``inference.json`` (PIR), Paddle 2.6
``inference.pdmodel``; both with ``inference.pdiparams`` (PaddleClas's names; ``model.*``
folders of releases before 0.3 are still read)."""
from __future__ import annotations

import json
import os

import numpy as np

from rdrop_paddle.config.schema import MAX_IMAGE_SIZE
from rdrop_paddle.data.transforms import INTERPOLATION
from rdrop_paddle.errors import UserInputError

PREFIX, CONFIG = "inference", "infer_cfg.json"
LEGACY_PREFIX = "model"  # the names of releases before 0.3


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
