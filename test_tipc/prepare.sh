#!/usr/bin/env bash
# Data for the TIPC chain, made offline: bash test_tipc/prepare.sh CONFIG_TXT MODE
#   digits:    scikit-learn's handwritten digits (inside scikit-learn) and five held-out PNGs
#   CIFAR-100: a small archive in the original cifar-100-python.tar.gz format (random pixels,
#              64 train / 32 test images) and four 32x32 PNGs; the real archive is not needed.
set -euo pipefail
config=${1:?usage: bash test_tipc/prepare.sh test_tipc/configs/MODEL/train_infer_python.txt MODE}
mode=${2:-lite_train_lite_infer}
cd "$(dirname "$0")/.."
[ -f "$config" ] || { echo "prepare.sh: no file $config" >&2; exit 2; }
case "$mode" in
  lite_train_lite_infer|lite_train_whole_infer|whole_train_whole_infer|whole_infer) ;;
  *) echo "prepare.sh: mode $mode is not one of TIPC's modes (lite_train_lite_infer, lite_train_whole_infer, whole_train_whole_infer, whole_infer)" >&2; exit 2 ;;
esac
python_bin=$(grep -m1 '^python:' "$config" | cut -d: -f2-)
mkdir -p test_tipc/data
"$python_bin" - <<'PY'
import io, os, pickle, tarfile
import numpy as np
from PIL import Image
from rdrop_paddle.data.digits import load_digits_split

root = "test_tipc/data"
images, labels = load_digits_split(0.2, 0)["val"]
os.makedirs(f"{root}/digits_images", exist_ok=True)
for i in range(5):
    Image.fromarray(images[i]).save(f"{root}/digits_images/heldout_{i}_label{labels[i]}.png")

rng = np.random.RandomState(0)
def split(n):
    return {b"filenames": [b"img_%d.png" % i for i in range(n)], b"batch_label": b"tipc",
            b"fine_labels": rng.randint(0, 100, n).tolist(), b"coarse_labels": rng.randint(0, 20, n).tolist(),
            b"data": rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)}
members = {"train": split(64), "test": split(32), "meta": {b"fine_label_names": [b"class_%d" % i for i in range(100)]}}
with tarfile.open(f"{root}/cifar-100-python.tar.gz", "w:gz") as tar:
    for name, obj in members.items():
        raw = pickle.dumps(obj, protocol=2)
        info = tarfile.TarInfo(f"cifar-100-python/{name}")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
os.makedirs(f"{root}/cifar100_images", exist_ok=True)
for i in range(4):
    planes = members["test"][b"data"][i].reshape(3, 32, 32).transpose(1, 2, 0)
    Image.fromarray(planes).save(f"{root}/cifar100_images/test_{i}.png")
print(f"prepare.sh: wrote {root}/digits_images, {root}/cifar-100-python.tar.gz, {root}/cifar100_images")
PY
