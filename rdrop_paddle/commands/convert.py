"""Convert ViT weights to a Paddle ``.pdparams`` for the package ViT.

    python tools/convert_weights.py --src ViT-B_16.npz --format auto \\
        --model vit_base_patch16_384 --num-classes 100 --out vit_b16_384_c100.pdparams
"""
from __future__ import annotations

import time

from rdrop_paddle.convert import FORMATS, convert_checkpoint, save_state


def run(args) -> None:
    start = time.perf_counter()
    state, notices = convert_checkpoint(args.src, args.format, args.model, args.num_classes,
                                        args.image_size)
    for notice in notices:
        print(f"notice: {notice}")
    save_state(state, args.out)
    n = sum(v.size for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n:,} parameters "
          f"({time.perf_counter() - start:.1f}s)")
