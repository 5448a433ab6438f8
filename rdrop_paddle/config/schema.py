"""The configuration's schema: sections Global / Model / Loss / Optimizer / Data as typed
dataclasses, the limits a value may reach, and which keys define a run (for resuming) or
may differ between nodes.  Nothing here reads files or imports paddle."""
from __future__ import annotations

import dataclasses
import reprlib
from dataclasses import dataclass, field
from typing import Any, Optional

_REPR = reprlib.Repr()  # a value in a message: bounded, however deep or shared the YAML is
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 60, 60


def short_repr(value: Any) -> str:
    """A value as it appears in a message: bounded, however deep or shared."""
    return _REPR.repr(value)


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": (default,) + choices})


@dataclass
class GlobalConfig:
    output_dir: str = "output/run"
    seed: int = 42  # any integer in [0, 2**63)
    max_steps: int = 1000
    device: str = _choice("cpu", "gpu")
    log_every: int = 10
    eval_every: int = 100
    save_every: int = 100
    keep_checkpoints: int = 2
    resume: str = ""  # "" (refuse to overwrite a run), "auto" (latest in output_dir) or a .pdopt path
    amp: str = _choice("off", "fp16", "bf16")
    amp_level: str = _choice("O1", "O2")
    stop_timeout: float = 300.0  # after SIGTERM: save at the next step boundary, or exit after this many s
    setup_timeout: float = 1800.0  # s a rank waits for the others at a stage boundary (setup, saves)
    print_mem_info: bool = False  # peak memory in every log line (PaddleClas's key)
    model_subdir: bool = False  # PaddleClas's layout: the run's files go to output_dir/<Model.name>/


@dataclass
class ModelConfig:
    name: str = "vit_base_patch16_384"  # a ViT variant, or bert / ernie (architecture from config.json)
    num_classes: int = 100  # 0: the data set's class count
    image_size: int = 384
    pretrained: str = ""
    dropout: float = 0.1  # after the embeddings and in the MLP (text: hidden_dropout_prob, classifier)
    attn_dropout: float = 0.0  # on the attention probabilities (text: attention_probs_dropout_prob)
    proj_dropout: Optional[float] = None  # after the attention projection; null = attn_dropout (vit_src)
    drop_path: float = 0.0
    recompute: bool = False  # recompute each block in the backward: less memory, same gradients
    ema_decay: float = 0.0  # >0: an exponential moving average of the weights (timm ModelEmaV2)
    ema_warmup: bool = True  # decay min(ema_decay, n / (9 + n)) at step n (TensorFlow's num_updates rule)

    def kwargs(self) -> dict:
        """Keyword arguments of ``build_model(self.name, ...)``."""
        return {"num_classes": self.num_classes, "image_size": self.image_size,
                "dropout": self.dropout, "attn_dropout": self.attn_dropout,
                "proj_dropout": self.proj_dropout, "drop_path": self.drop_path,
                "recompute": self.recompute}


@dataclass
class LossConfig:
    alpha: float = 0.3
    mode: str = _choice("concat", "twice")
    convention: str = _choice("vit_src", "readme")
    kl_batch_size: int = 0  # >0: KL sums normalised to this many samples (see RDropCrossEntropy)
    label_smoothing: float = 0.0  # targets (1 - eps) * y + eps / C in the cross-entropy


@dataclass
class OptimizerConfig:
    name: str = _choice("sgd", "adamw")
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0  # not applied to biases, norms, pos_embed, cls_token (timm, DeiT)
    warmup_steps: int = 500
    schedule: str = _choice("cosine", "constant", "polynomial")  # polynomial: HF's, power 1, to 1e-7
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW
    eps: float = 1e-8  # AdamW
    grad_clip: float = 1.0
    accum_steps: int = 0  # 0: derived from Data.max_per_card_batch (1 if that is 0)
    layer_decay: float = 1.0  # <1: lr x layer_decay^(L - layer) per block (BEiT, MAE); 1 = off


@dataclass
class DataConfig:
    name: str = _choice("digits", "cifar100", "folder", "filelist", "text_folder", "glue", "clue")
    root: str = ""
    task: str = ""  # glue: sst-2, cola, mrpc, qqp, qnli, rte, mnli; clue: tnews, iflytek, afqmc
    max_seq_len: int = 128  # text: tokens per sequence, [CLS] and [SEP] included (longest-first truncation)
    skip_bad_lines: bool = False  # text: a bad line stops (false) or is skipped and counted
    train_list: str = ""  # filelist: "relative/path label" lines, relative to root
    val_list: str = ""
    label_list: str = ""  # filelist: optional "id name" lines (PaddleClas class_id_map_file)
    skip_bad_images: bool = False  # a corrupt image: stop (false) or replace it deterministically
    allow_outside_root: bool = False  # folder links and list paths may resolve outside Data.root
    batch_size: int = 512
    eval_batch_size: int = 256
    max_per_card_batch: int = 0  # 0: no cap; else the per-card micro-batch never exceeds it
    num_workers: int = 0
    val_fraction: float = 0.2
    split_seed: int = 0
    # augmentation (training only); the defaults are the official vit_src pipeline
    scale: list[float] = field(default_factory=lambda: [0.05, 1.0])  # RandomResizedCrop area range
    interpolation: str = _choice("bilinear", "bicubic")  # also the evaluation resize
    hflip: float = 0.0  # probability of a horizontal flip
    color_jitter: float = 0.0  # brightness, contrast and saturation strength
    auto_augment: str = ""  # timm RandAugment string, e.g. rand-m9-mstd0.5-inc1; "" = off
    random_erasing: float = 0.0  # probability of erasing one random box (timm RandomErasing, pixel mode)
    crop_pct: float = 1.0  # evaluation: resize to size / crop_pct, centre crop (1.0: resize only)
    # Mixup / CutMix (timm Mixup semantics), once per micro-batch
    mixup: float = 0.0  # Beta alpha; 0 = off
    cutmix: float = 0.0  # Beta alpha; 0 = off
    mix_prob: float = 1.0  # probability of mixing a micro-batch
    mix_switch_prob: float = 0.5  # with both on: probability of CutMix instead of Mixup


@dataclass
class Config:
    Global: GlobalConfig = field(default_factory=GlobalConfig)
    Model: ModelConfig = field(default_factory=ModelConfig)
    Loss: LossConfig = field(default_factory=LossConfig)
    Optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    Data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PATH_KEYS = {("Global", "output_dir"), ("Global", "resume"), ("Model", "pretrained"), ("Data", "root"),
             ("Data", "train_list"), ("Data", "val_list"), ("Data", "label_list")}

MAX_CLASSES = 100_000  # ImageNet-21k has 21,843; the head stays a few hundred MB at most
MAX_IMAGE_SIZE = 4096  # pixels a side: 65,536 patches of 16 px
MAX_WORKERS = 256  # DataLoader processes per card
MAX_SEQ_LEN = 1 << 16  # tokens: position tables beyond this are not BERT-family models
MAX_STEPS = 1 << 31  # optimizer steps: far past any run, far below the overflows of rates and ETAs
MAX_BATCH = 1 << 24  # samples in a global batch (a per-card batch is also bounded by the training set)
MAX_STOP_TIMEOUT = 86_400  # seconds: a day (Python's timers overflow near 1e10)


RESUME_KEYS = {"Model": ("name", "num_classes", "image_size", "dropout", "attn_dropout", "proj_dropout",
                         "drop_path",
                         "ema_decay", "ema_warmup"),
               "Loss": ("alpha", "mode", "convention", "kl_batch_size", "label_smoothing"),
               "Optimizer": ("name", "lr", "momentum", "weight_decay", "warmup_steps", "schedule", "grad_clip",
                             "layer_decay", "betas", "eps"),
               "Data": ("name", "task", "max_seq_len", "skip_bad_lines", "batch_size", "val_fraction", "split_seed", "scale", "interpolation", "hflip",
                        "color_jitter", "auto_augment", "random_erasing", "mixup", "cutmix", "mix_prob",
                        "mix_switch_prob", "skip_bad_images"),
               "Global": ("seed",)}


# Settings a node may set for itself in a multi-node run (paths, local resources; rank 0's
# resume and checkpoint settings are the ones that act); every other key must agree.
PER_NODE_KEYS = ("Global.output_dir", "Global.resume", "Global.keep_checkpoints", "Global.stop_timeout",
                 "Global.setup_timeout",
                 "Model.pretrained", "Data.root", "Data.train_list", "Data.val_list", "Data.label_list",
                 "Data.num_workers")


def resume_differences(saved: dict, cfg: Config) -> list[str]:
    """Keys that define a run and differ between a saved config dict and ``cfg``."""
    now = cfg.to_dict()
    def before(sec: str, key: str) -> Any:  # a key runs of earlier releases did not record: their behaviour
        return saved.get(sec, {}).get(key, LEGACY.get((sec, key)))

    return [f"{sec}.{key}: {short_repr(before(sec, key))} -> {now[sec][key]!r}"
            for sec, keys in RESUME_KEYS.items() for key in keys if before(sec, key) != now[sec][key]]


LEGACY = {("Model", "ema_warmup"): False,  # 0.2 averaged without warm-up
          ("Optimizer", "betas"): [0.9, 0.999], ("Optimizer", "eps"): 1e-8,  # before 0.5: Paddle's defaults
          ("Data", "task"): "", ("Data", "max_seq_len"): 128, ("Data", "skip_bad_lines"): False}
