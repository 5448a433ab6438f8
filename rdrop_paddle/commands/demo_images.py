"""Write a small image data set in both layouts the package reads, offline:
``python tools/make_demo_images.py --out DIR [--size 32]``.

The 1,797 handwritten digits of scikit-learn, upscaled to ``--size`` pixels, saved as real
image files of mixed kinds (grey PNG, RGB JPEG, palette PNG, RGBA PNG, 16-bit PNG), in

    DIR/train/<class>/<name>.png|jpg   DIR/val/<class>/...      (Data.name: folder)
    DIR/train_list.txt  DIR/val_list.txt  DIR/labels.txt        (Data.name: filelist)

with class names ``zero`` .. ``nine`` and the quickstart's held-out split.  A ``README.txt``
beside the images is not an image: the folder source skips and counts it.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import make_folder

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
KINDS = ("png_grey", "jpg_rgb", "png_palette", "png_rgba", "png_16bit")


def _save(grey: np.ndarray, kind: str, path: str, tint: tuple) -> str:
    """Save the ``uint8`` grey image ``grey`` as ``kind``; returns the file name written."""
    rgb = (grey[:, :, None].astype(np.float32) * np.float32(tint)).astype(np.uint8)
    if kind == "png_grey":
        Image.fromarray(grey, "L").save(path + ".png")
    elif kind == "jpg_rgb":
        Image.fromarray(rgb, "RGB").save(path + ".jpg", quality=95)
    elif kind == "png_palette":
        Image.fromarray(rgb, "RGB").quantize(64).save(path + ".png")
    elif kind == "png_rgba":
        Image.fromarray(np.dstack([rgb, np.full_like(grey, 255)]), "RGBA").save(path + ".png")
    else:
        Image.fromarray(grey.astype(np.uint16) * 257).save(path + ".png")  # mode I;16
    return os.path.basename(path) + (".jpg" if kind == "jpg_rgb" else ".png")


def write_demo_images(out: str, size: int = 32, val_fraction: float = 0.2, split_seed: int = 0) -> dict:
    """Write the data set into ``out``; returns ``{'train': n, 'val': n}``."""
    from rdrop_paddle.data.digits import load_digits_split

    if not 8 <= size <= 512:
        raise UserInputError(f"--size must be in [8, 512], got {size}")
    make_folder(out, "--out")
    if os.listdir(out):
        raise UserInputError(f"{out} is not empty; choose a new folder for the demo images")
    counts, rng = {}, np.random.default_rng(split_seed)
    with open(os.path.join(out, "labels.txt"), "w", encoding="utf-8") as fh:
        fh.writelines(f"{i} {name}\n" for i, name in enumerate(NAMES))
    for split, (images, labels) in load_digits_split(val_fraction, split_seed).items():
        lines = []
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = os.path.join(out, split, NAMES[label])
            os.makedirs(folder, exist_ok=True)
            grey = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
            tint = tuple(rng.uniform(0.6, 1.0, 3))
            name = _save(grey, KINDS[i % len(KINDS)], os.path.join(folder, f"{split}_{i:04d}"), tint)
            lines.append(f"{split}/{NAMES[label]}/{name} {label}\n")
        with open(os.path.join(out, f"{split}_list.txt"), "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        counts[split] = len(lines)
    with open(os.path.join(out, "train", "README.txt"), "w", encoding="utf-8") as fh:
        fh.write("Digits from scikit-learn as image files (rdrop_paddle demo).\n")
    return counts


def run(args) -> None:
    counts = write_demo_images(args.out, args.size)
    print(f"wrote {counts['train']} training and {counts['val']} validation images of {len(NAMES)} classes "
          f"to {args.out} (folders train/, val/; lists train_list.txt, val_list.txt, labels.txt)")
