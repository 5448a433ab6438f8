"""Speed of the training data path per DataLoader worker, and the memory of a lazy file data set.

    python benchmarks/data_bench.py [--images 64] [--samples 300] [--size 224] [--rss 1000,50000]

Decode + augment throughput (images/s in one process = one worker) at ``--size`` px from
JPEG files of ImageNet's typical size (500 x 375, written from smooth random colour fields),
for the recipe transform, + flip and colour jitter, + RandAugment (rand-m9-mstd0.5-inc1),
+ random erasing, and the Mixup/CutMix batch op per batch of 64.  Then the resident memory a
fresh process adds by building a ``Data.name: folder`` data set of N tiny PNG files (hard
links of one), for each N of ``--rss``: only the path list should grow with N.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import _entry  # noqa: F401  (finds rdrop_paddle in a checkout)
import numpy as np
from PIL import Image

VARIANTS = {
    "recipe (crop + normalise)": {},
    "+ flip, colour jitter 0.4": {"hflip": 0.5, "color_jitter": 0.4},
    "+ RandAugment m9": {"hflip": 0.5, "auto_augment": "rand-m9-mstd0.5-inc1"},
    "+ random erasing 0.25": {"hflip": 0.5, "auto_augment": "rand-m9-mstd0.5-inc1", "random_erasing": 0.25},
}


def _jpegs(folder: str, n: int) -> list[str]:
    rng, paths = np.random.default_rng(0), []
    for i in range(n):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        path = os.path.join(folder, f"img_{i:03d}.jpg")
        Image.fromarray(small).resize((500, 375), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def throughput(paths: list[str], samples: int, size: int) -> dict[str, float]:
    from rdrop_paddle.data.decode import read_image
    from rdrop_paddle.data.mixup import Mixup
    from rdrop_paddle.data.transforms import TrainTransform

    rates = {}
    for name, options in VARIANTS.items():
        tf = TrainTransform(size, (0.08, 1.0), "bicubic", **options)
        start = time.perf_counter()
        for i in range(samples):
            tf(read_image(paths[i % len(paths)], 3), np.random.default_rng([0, 1, i]))
        rates[name] = samples / (time.perf_counter() - start)
    batch = np.random.default_rng(0).standard_normal((64, 3, size, size)).astype(np.float32)
    labels, op = np.arange(64) % 10, Mixup(10, 0.8, 1.0)
    start = time.perf_counter()
    for b in range(20):
        op(batch, labels, [(i, (0, 1, 64 * b + i)) for i in range(64)])
    rates["Mixup/CutMix batch op (per image)"] = 20 * 64 / (time.perf_counter() - start)
    return rates


RSS_CHILD = """
import sys
from rdrop_paddle.config.load import load_config
from rdrop_paddle.data import build_datasets

def rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

cfg = load_config(None, ["Data.name=folder", f"Data.root={sys.argv[1]}"])
before = rss_kib()
train, val = build_datasets(cfg.Data, 8, 0, 1)
print(len(train) + len(val), before, rss_kib())
"""


def lazy_rss(count: int, folder: str) -> tuple[int, float]:
    """``(images listed, MiB of resident memory added by building the data set)`` for ``count`` PNG files."""
    pixel = os.path.join(folder, "pixel.png")
    Image.new("L", (2, 2), 7).save(pixel)
    data = os.path.join(folder, f"n{count}")
    for c in range(10):
        os.makedirs(os.path.join(data, "train", f"class_{c}"))
    for i in range(count):
        os.link(pixel, os.path.join(data, "train", f"class_{i % 10}", f"{i:06d}.png"))
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, data], capture_output=True, text=True, check=True)
    n, before, after = map(int, out.stdout.split()[-3:])
    return n, (after - before) / 1024.0


def main() -> None:
    from rdrop_paddle.commands.arguments import count, counts, one_line_errors

    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("--images", type=count(1, 100_000), default=64, help="JPEG files written to decode")
    parser.add_argument("--samples", type=count(1, 10_000_000), default=300, help="samples timed per pipeline")
    parser.add_argument("--size", type=count(1, 4096), default=224, help="model input size in pixels")
    parser.add_argument("--rss", type=counts(1, 1_000_000), default=[1000, 50000],
                        help="folder sizes whose data-set memory is measured, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rates = throughput(_jpegs(tmp, args.images), args.samples, args.size)
        print(f"| data path at {args.size} px, one worker | images/s |\n| --- | --- |")
        for name, rate in rates.items():
            print(f"| {name} | {rate:.0f} |")
        print("\n| files in the folder | resident memory added by building the data set |\n| --- | --- |")
        for files in args.rss:
            n, mib = lazy_rss(files, tmp)
            print(f"| {n:,} | {mib:.1f} MiB |")
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
