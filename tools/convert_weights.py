"""Convert ViT weights (npz, R-Drop, timm, HF, PaddleClas, x2paddle) to a .pdparams for the package ViT."""
import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
from rdrop_paddle.cli import main

if __name__ == "__main__":
    main("convert")
