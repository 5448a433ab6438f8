"""Pipeline alignment steps: data preprocessing, a short training run, exported inference."""
from __future__ import annotations

import io
import os
import pickle
import tarfile
import tempfile

import numpy as np
import paddle
import torch

from rdrop_paddle.alignment import reference as ref
from rdrop_paddle.alignment.report import StepResult, record
from rdrop_paddle.alignment.steps import paddle_vit
from rdrop_paddle.config.schema import OptimizerConfig
from rdrop_paddle.data.cifar100 import build_cifar100
from rdrop_paddle.data.digits import build_digits
from rdrop_paddle.data.sampler import SampleStream
from rdrop_paddle.data.transforms import crop_box
from rdrop_paddle.engine.optim import build_optimizer, build_scheduler
from rdrop_paddle.engine.step import TrainStep
from rdrop_paddle.losses import RDropCrossEntropy


def write_cifar100(path: str, n_train: int = 8, n_test: int = 8, seed: int = 0) -> None:
    """A small ``cifar-100-python.tar.gz`` in the original layout (pickled dicts, bytes keys)."""
    rng = np.random.RandomState(seed)

    def split(n):
        return {b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
                b"fine_labels": rng.randint(0, 100, n).tolist(), b"coarse_labels": [0] * n,
                b"filenames": [b"%d.png" % i for i in range(n)], b"batch_label": b"aligned"}

    with tarfile.open(path, "w:gz") as tar:
        for name, obj in (("train", split(n_train)), ("test", split(n_test)),
                          ("meta", {b"fine_label_names": [b"class%d" % i for i in range(100)]})):
            raw = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def data(out_dir: str, size: int = 384, samples: int = 8) -> StepResult:
    """Evaluation (Resize) and training (RandomResizedCrop at the same box) transforms of
    genuine CIFAR-format images vs the official torchvision pipeline."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "cifar-100-python.tar.gz")
        write_cifar100(archive, samples, samples)
        train, val = build_cifar100(archive, size)
    ours, theirs, boxes = {}, {}, []
    for i in range(samples):
        ours[f"eval_{i}"] = val[i][0]
        theirs[f"eval_{i}"], source = ref.torchvision_pipeline(Image.fromarray(val.images[i]), size)
        rng = np.random.default_rng(i)
        box = crop_box(np.random.default_rng(i), 32, 32)
        boxes.append(box)
        ours[f"train_{i}"] = train.transform(Image.fromarray(train.images[i]), rng)
        theirs[f"train_{i}"], _ = ref.torchvision_pipeline(Image.fromarray(train.images[i]), size, box)
    diff = record(out_dir, "data", ours, theirs, 1e-6)
    return StepResult("data", diff, 1e-6, f"{samples} CIFAR-format images at {size}px, eval Resize and "
                      f"train crops {boxes[:2]}...; reference: {source}")


def train(out_dir: str, steps: int = 60, batch: int = 64, plot: str | None = None) -> StepResult:
    """``steps`` SGD-momentum updates (clip 1.0, warm-up + cosine, official loop order) of the
    quickstart ViT on the digits, dropout off, the same initial weights and batches as the
    official structure in PyTorch: loss at every step and final held-out accuracy."""
    torch.manual_seed(0)
    official = ref.OfficialViT(dropout_rate=0.0)
    net = paddle_vit("vit_nano_patch4_8", official, "rdrop", dropout=0.0)
    cfg = OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, warmup_steps=10, grad_clip=1.0)
    sched = build_scheduler(cfg, steps)
    step = TrainStep(net, RDropCrossEntropy(0.3, "vit_src"), build_optimizer(cfg, net, sched), sched,
                     "concat", accum=1)
    t_opt = torch.optim.SGD(official.parameters(), lr=cfg.lr, momentum=0.9)
    t_sched = ref.OfficialWarmupCosine(t_opt, warmup_steps=10, t_total=steps)
    train_set, val_set = build_digits(0.2, 0)
    stream = iter(SampleStream(len(train_set), batch, seed=0))
    ours, theirs = np.zeros(steps), np.zeros(steps)
    net.train()
    official.train()
    for i in range(steps):
        keys = next(stream)
        x = np.stack([train_set[k][0] for k in keys])
        y = train_set.labels[[k for k, _ in keys]]
        batches = iter([(paddle.to_tensor(x), paddle.to_tensor(y))])
        ours[i] = step.accumulate(batches)[0]
        step.apply()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        t_loss = ref.official_vit_src_loss(official(tx), official(tx), ty, 0.3)
        theirs[i] = float(t_loss.detach())
        ref.official_update(official, t_opt, t_sched, t_loss)
    net.eval()
    official.eval()
    xv = np.stack([val_set[i][0] for i in range(len(val_set))])
    hits = {"paddle": float((net(paddle.to_tensor(xv)).numpy().argmax(1) == val_set.labels).sum())}
    with torch.no_grad():
        hits["torch"] = float((official(torch.from_numpy(xv)).numpy().argmax(1) == val_set.labels).sum())
    if plot:
        from rdrop_paddle.utils.plots import plot_alignment_curves

        plot_alignment_curves(ours, theirs, hits, len(val_set), plot)
    diff = record(out_dir, "train", {"loss": ours, "val_hits": [hits["paddle"]]},
                  {"loss": theirs, "val_hits": [hits["torch"]]}, 1e-4, relative=True)
    return StepResult("train", diff, 1e-4, f"{steps} steps, batch {batch}, digits, SGD lr {cfg.lr} warm-up 10 "
                      f"+ cosine, clip 1.0, dropout off; held-out top-1 {100 * hits['paddle'] / len(val_set):.2f} "
                      f"(Paddle) vs {100 * hits['torch'] / len(val_set):.2f} (PyTorch); loss / max(1, |loss|)")


def inference(out_dir: str, batch: int = 4) -> StepResult:
    """The exported model through Paddle Inference vs the dygraph model (eval mode)."""
    from rdrop_paddle.deploy.export import export
    from rdrop_paddle.deploy.predictor import Predictor
    from rdrop_paddle.models import build_model

    paddle.seed(0)
    net = build_model("vit_tiny_patch16_224", num_classes=100, image_size=64)
    net.eval()
    x = np.random.RandomState(5).randn(batch, 3, 64, 64).astype(np.float32)
    dygraph = net(paddle.to_tensor(x)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        export(net, tmp, 64, 3, [str(i) for i in range(100)])
        exported = Predictor(tmp).run(x)
    diff = record(out_dir, "inference", {"logits": exported}, {"logits": dygraph}, 1e-5)
    return StepResult("inference", diff, 1e-5, f"ViT-Ti/16 at 64px, batch {batch}: paddle.jit.save + "
                      f"Paddle Inference vs dygraph (both Paddle {paddle.__version__})")
