"""Convert ViT weights to a Paddle ``.pdparams`` for the package ViT.

    python tools/convert_weights.py --src ViT-B_16.npz --format auto \
        --model vit_base_patch16_384 --num-classes 100 --out vit_b16_384_c100.pdparams
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rdrop_paddle  # noqa: E402,F401  (sets the CPU environment before paddle loads)
from rdrop_paddle.cli import run  # noqa: E402
from rdrop_paddle.convert import FORMATS, convert_checkpoint, save_state  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help=".npz, .pth/.pt/.bin or .safetensors file")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS, "x2paddle"])
    p.add_argument("--model", default="vit_base_patch16_224")
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    def convert() -> None:
        start = time.perf_counter()
        state, notices = convert_checkpoint(args.src, args.format, args.model, args.num_classes,
                                            args.image_size)
        for notice in notices:
            print(f"notice: {notice}")
        save_state(state, args.out)
        n = sum(v.size for v in state.values())
        print(f"wrote {args.out}: {len(state)} tensors, {n:,} parameters "
              f"({time.perf_counter() - start:.1f}s)")

    run(convert)


if __name__ == "__main__":
    main()
