"""Typed YAML configuration: sections Global / Model / Loss / Optimizer / Data.

A config file is read with a safe YAML loader, overridden by ``-o Section.key=value`` and
checked field by field: unknown sections or keys, wrong types, values outside a field's
choices or range raise :class:`~rdrop_paddle.errors.UserInputError` naming them.

Scalars follow YAML 1.2, not PyYAML's 1.1: only ``true``/``false`` are booleans (``off``,
``yes`` stay strings) and ``1e-3`` is a float.  An override of a text field takes the
text as written (``-o Global.output_dir=yes`` is the folder ``yes``); ``~`` in paths is
expanded.
"""
from __future__ import annotations

import dataclasses
import os
import re
import reprlib
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import yaml

from rdrop_paddle.errors import UserInputError


class _Yaml12Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 booleans and floats."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?[0-9][0-9_]*\.[0-9_]*$"),
    list("-+0123456789."))


def _yaml(text: str) -> Any:
    """YAML 1.2 values; a value its constructor cannot build (``2001-13-45``, ``!!float abc``,
    a 5000-digit integer) or nesting deeper than Python recurses is a ``YAMLError``."""
    try:
        return yaml.load(text, Loader=_Yaml12Loader)
    except (ValueError, OverflowError, TypeError) as e:
        raise yaml.YAMLError(f"{type(e).__name__}: {str(e)[:120]}") from None
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


_REPR = reprlib.Repr()  # a value in a message: bounded, however deep or shared the YAML is
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 60, 60


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
    name: str = "vit_base_patch16_384"
    num_classes: int = 100  # 0: the data set's class count
    image_size: int = 384
    pretrained: str = ""
    dropout: float = 0.1  # after the embeddings and in the MLP
    attn_dropout: float = 0.0  # on the attention probabilities
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
    schedule: str = _choice("cosine", "constant")
    grad_clip: float = 1.0
    accum_steps: int = 0  # 0: derived from Data.max_per_card_batch (1 if that is 0)
    layer_decay: float = 1.0  # <1: lr x layer_decay^(L - layer) per block (BEiT, MAE); 1 = off


@dataclass
class DataConfig:
    name: str = _choice("digits", "cifar100", "folder", "filelist")
    root: str = ""
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


_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}
PATH_KEYS = {("Global", "output_dir"), ("Global", "resume"), ("Model", "pretrained"), ("Data", "root"),
             ("Data", "train_list"), ("Data", "val_list"), ("Data", "label_list")}


def _coerce(where: str, value: Any, hint: Any, choices: tuple | None) -> Any:
    """Check one value against its declared type; ints are accepted as floats."""
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    typ = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None and optional:
        return None
    if typing.get_origin(hint) is list:  # a list of floats (Data.scale)
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise UserInputError(f"{where}: expected a list of numbers, got {_REPR.repr(value)}")
        return [float(v) for v in value]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is str and value is None:
        value = ""
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UserInputError(
            f"{where}: expected {typ.__name__}{' or null' if optional else ''}, "
            f"got {type(value).__name__} {_REPR.repr(value)}")
    if choices and value not in choices:
        raise UserInputError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _section(cfg: Config, section: str, origin: str) -> Any:
    if section not in _SECTIONS:
        raise UserInputError(
            f"{origin}: unknown section {section!r}; valid sections: {', '.join(_SECTIONS)}")
    return getattr(cfg, section)


def _field(cfg: Config, section: str, key: str, origin: str) -> dataclasses.Field:
    fields = {f.name: f for f in dataclasses.fields(_section(cfg, section, origin))}
    if key not in fields:
        raise UserInputError(
            f"{origin}: unknown key {section}.{key}; valid keys of {section}: {', '.join(fields)}")
    return fields[key]


def _apply(cfg: Config, section: str, key: str, value: Any, origin: str) -> None:
    f = _field(cfg, section, key, origin)
    sec = getattr(cfg, section)
    value = _coerce(f"{origin}: {section}.{key}", value, typing.get_type_hints(type(sec))[key],
                    f.metadata.get("choices"))
    if (section, key) in PATH_KEYS and value:
        value = os.path.expanduser(value)
    setattr(sec, key, value)


def parse_override(text: str) -> tuple[str, str, str]:
    """Split ``Section.key=value`` into its parts (the value still as text)."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise UserInputError(f"malformed override {_REPR.repr(text)}: expected Section.key=value")
    return section, key, raw


def _paddleclas_amp(section: str, key: str, raw: str, text: str) -> tuple[str, str, str]:
    """PaddleClas's ``-o AMP.use_amp=True|False`` and ``-o AMP.level=O1|O2`` (its TIPC runner
    appends the first to every training) as ``Global.amp`` (fp16 or off) and ``Global.amp_level``."""
    if section != "AMP":
        return section, key, raw
    if key == "level":
        return "Global", "amp_level", raw
    if key == "use_amp" and raw.strip().lower() in ("true", "false"):
        return "Global", "amp", "fp16" if raw.strip().lower() == "true" else "off"
    raise UserInputError(f"-o {_REPR.repr(text)}: of PaddleClas's AMP section only use_amp (True or False) and "
                         f"level are understood; they set Global.amp and Global.amp_level")


def _override_value(cfg: Config, section: str, key: str, raw: str, text: str) -> Any:
    """A text field takes the text as written; other fields parse it as a YAML scalar."""
    name = _field(cfg, section, key, f"-o {text}").name
    if typing.get_type_hints(type(getattr(cfg, section)))[name] is str:
        return raw.strip()
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise UserInputError(f"override {_REPR.repr(text)}: value is not valid YAML ({e})") from None
    is_list = typing.get_origin(typing.get_type_hints(type(getattr(cfg, section)))[name]) is list
    if isinstance(value, dict) or (isinstance(value, list) and not is_list):
        raise UserInputError(f"override {_REPR.repr(text)}: value must be a scalar")
    return value


MAX_CONFIG_BYTES = 1 << 20


def _read_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise UserInputError(f"config file not found: {path}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserInputError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a config file")
        data = _yaml(raw.decode("utf-8")) or {}
    except OSError as e:
        raise UserInputError(f"cannot read config file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise UserInputError(f"{path}: not valid YAML ({e})") from None
    except RecursionError:
        raise UserInputError(f"{path}: nested too deeply; not a config file") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: top level must be a mapping of sections")
    return data


def load_config(path: str | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read ``path`` (or start from defaults) and apply ``Section.key=value`` overrides."""
    cfg = Config()
    if path is not None:
        for section, entries in _read_yaml(path).items():
            _section(cfg, str(section), path)
            if not isinstance(entries, dict):
                raise UserInputError(f"{path}: section {section} must be a mapping")
            for key, value in entries.items():
                _apply(cfg, section, str(key), value, path)
    for text in overrides:
        section, key, raw = _paddleclas_amp(*parse_override(text), text)
        _apply(cfg, section, key, _override_value(cfg, section, key, raw, text), f"-o {text}")
    from rdrop_paddle.config_checks import validate

    validate(cfg)
    if cfg.Global.model_subdir:
        cfg.Global.output_dir, cfg.Global.model_subdir = os.path.join(cfg.Global.output_dir, cfg.Model.name), False
    return cfg


MAX_CLASSES = 100_000  # ImageNet-21k has 21,843; the head stays a few hundred MB at most
MAX_IMAGE_SIZE = 4096  # pixels a side: 65,536 patches of 16 px
MAX_STOP_TIMEOUT = 86_400  # seconds: a day (Python's timers overflow near 1e10)


RESUME_KEYS = {"Model": ("name", "num_classes", "image_size", "dropout", "attn_dropout", "proj_dropout",
                         "drop_path",
                         "ema_decay", "ema_warmup"),
               "Loss": ("alpha", "mode", "convention", "kl_batch_size", "label_smoothing"),
               "Optimizer": ("name", "lr", "momentum", "weight_decay", "warmup_steps", "schedule", "grad_clip",
                             "layer_decay"),
               "Data": ("name", "batch_size", "val_fraction", "split_seed", "scale", "interpolation", "hflip",
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

    return [f"{sec}.{key}: {_REPR.repr(before(sec, key))} -> {now[sec][key]!r}"
            for sec, keys in RESUME_KEYS.items() for key in keys if before(sec, key) != now[sec][key]]


LEGACY = {("Model", "ema_warmup"): False}  # 0.2 averaged without warm-up


def save_config(cfg: Config, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    from rdrop_paddle.io import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)

    atomic_write(path, write)
