"""Convert ViT weights to a Paddle ``.pdparams`` for the package ViT, or a Hugging Face
BERT/ERNIE folder to a Paddle text folder.

    python tools/convert_weights.py --src ViT-B_16.npz --format auto \\
        --model vit_base_patch16_384 --num-classes 100 --out vit_b16_384_c100.pdparams
    python tools/convert_weights.py --format hf --src bert-base-uncased/ --out bert_paddle/
    python tools/convert_weights.py --format paddlenlp --src ernie-3.0-medium-zh/ --out ernie3_medium/
"""
from __future__ import annotations

import os
import time

from rdrop_paddle.config.schema import MAX_CLASSES
from rdrop_paddle.convert import convert_checkpoint, save_state
from rdrop_paddle.errors import UserInputError


def run(args) -> None:
    start = time.perf_counter()
    if args.num_classes is not None and args.num_classes < 1:
        raise UserInputError(f"--num-classes must be at least 1, got {args.num_classes}")
    if args.num_classes is not None and args.num_classes > MAX_CLASSES:
        raise UserInputError(f"--num-classes must be at most {MAX_CLASSES:,}, got {args.num_classes:,}")
    from rdrop_paddle.io.hub import is_hub

    if is_hub(args.src):  # fetched by name into the Hugging Face cache, then converted as a local copy
        from rdrop_paddle.io.hub import snapshot, weights_file

        folder = snapshot(args.src)
        args.src = folder if _is_text_folder(folder) else weights_file(folder, args.src)
    if os.path.isdir(args.src):
        from rdrop_paddle.convert.text import convert_text_folder

        from rdrop_paddle.convert.paddlenlp import WEIGHTS, is_paddlenlp_folder

        if args.format not in ("hf", "paddlenlp", "auto"):
            raise UserInputError(f"--src {args.src} is a folder: a Hugging Face or PaddleNLP text model (--format hf "
                                 f"or paddlenlp), not --format {args.format}")
        if args.format == "paddlenlp" and not is_paddlenlp_folder(args.src):
            raise UserInputError(f"--src {args.src} has no {WEIGHTS}; not a PaddleNLP checkpoint folder")
        if args.format == "hf" and is_paddlenlp_folder(args.src):
            raise UserInputError(f"--src {args.src} holds PaddleNLP's {WEIGHTS}: use --format paddlenlp (or auto)")
        for notice in convert_text_folder(args.src, args.out, args.num_classes or 0):
            print(f"notice: {notice}")
        print(f"wrote {args.out}: {', '.join(sorted(os.listdir(args.out)))} ({time.perf_counter() - start:.1f}s)")
        return
    if args.num_classes is None:
        raise UserInputError("--num-classes is required when converting a ViT checkpoint")
    state, notices = convert_checkpoint(args.src, args.format, args.model, args.num_classes,
                                        args.image_size)
    for notice in notices:
        print(f"notice: {notice}")
    save_state(state, args.out)
    n = sum(v.size for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n:,} parameters "
          f"({time.perf_counter() - start:.1f}s)")


def _is_text_folder(folder: str) -> bool:
    """A snapshot that holds a BERT/ERNIE model (its config.json names one, or PaddleNLP's weights)."""
    from rdrop_paddle.io import read_json

    if os.path.isfile(os.path.join(folder, "model_state.pdparams")):
        return True
    config = read_json(os.path.join(folder, "config.json"))
    return isinstance(config, dict) and config.get("model_type") in ("bert", "ernie")
