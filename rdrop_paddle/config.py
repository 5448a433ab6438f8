"""Typed YAML configuration: sections Global / Model / Loss / Optimizer / Data.

A config file is read with ``yaml.safe_load``, overridden by ``-o
Section.key=value`` (values parsed as YAML scalars) and checked field by
field: unknown sections or keys, wrong types and values outside a field's
choices raise :class:`~rdrop_paddle.errors.UserInputError` naming them.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from rdrop_paddle.errors import UserInputError


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": (default,) + choices})


@dataclass
class GlobalConfig:
    output_dir: str = "output/run"
    seed: int = 42
    max_steps: int = 1000
    device: str = _choice("cpu", "gpu")
    log_every: int = 10
    eval_every: int = 100
    save_every: int = 100
    keep_checkpoints: int = 2
    resume: str = ""  # "" (refuse to overwrite a run), "auto" (latest in output_dir) or a .pdopt path
    amp: str = _choice("off", "fp16", "bf16")
    amp_level: str = _choice("O1", "O2")


@dataclass
class ModelConfig:
    name: str = "vit_base_patch16_384"
    num_classes: int = 100
    image_size: int = 384
    pretrained: str = ""
    dropout: float = 0.1
    attn_dropout: float = 0.0
    drop_path: float = 0.0


@dataclass
class LossConfig:
    alpha: float = 0.3
    mode: str = _choice("concat", "twice")
    convention: str = _choice("vit_src", "readme")
    kl_batch_size: int = 0  # >0: KL sums normalised to this many samples (see RDropCrossEntropy)


@dataclass
class OptimizerConfig:
    name: str = _choice("sgd", "adamw")
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_steps: int = 500
    schedule: str = _choice("cosine", "constant")
    grad_clip: float = 1.0
    accum_steps: int = 0  # 0: derived from Data.max_per_card_batch (1 if that is 0)


@dataclass
class DataConfig:
    name: str = _choice("digits", "cifar100")
    root: str = ""
    batch_size: int = 512
    eval_batch_size: int = 256
    max_per_card_batch: int = 0  # 0: no cap; else the per-card micro-batch never exceeds it
    num_workers: int = 0
    val_fraction: float = 0.2
    split_seed: int = 0


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


def _coerce(where: str, value: Any, typ: type, choices: tuple | None) -> Any:
    """Check one value against its declared type; ints are accepted as floats."""
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if typ is str and value is None:
        value = ""
    if typ is str and isinstance(value, bool):  # YAML 1.1 reads a bare off/on as a bool
        value = "on" if value else "off"
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UserInputError(
            f"{where}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    if choices and value not in choices:
        raise UserInputError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _section(cfg: Config, section: str, origin: str) -> Any:
    if section not in _SECTIONS:
        raise UserInputError(
            f"{origin}: unknown section {section!r}; valid sections: {', '.join(_SECTIONS)}")
    return getattr(cfg, section)


def _apply(cfg: Config, section: str, key: str, value: Any, origin: str) -> None:
    sec = _section(cfg, section, origin)
    fields = {f.name: f for f in dataclasses.fields(sec)}
    if key not in fields:
        raise UserInputError(
            f"{origin}: unknown key {section}.{key}; valid keys of {section}: "
            f"{', '.join(fields)}")
    hints = typing.get_type_hints(type(sec))
    f = fields[key]
    setattr(sec, key, _coerce(f"{origin}: {section}.{key}", value, hints[key],
                              f.metadata.get("choices")))


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``Section.key=value`` into its parts; the value is a YAML scalar."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise UserInputError(f"malformed override {text!r}: expected Section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise UserInputError(f"override {text!r}: value is not valid YAML ({e})") from None
    if isinstance(value, (dict, list)):
        raise UserInputError(f"override {text!r}: value must be a scalar")
    return section, key, value


def load_config(path: str | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read ``path`` (or start from defaults) and apply ``Section.key=value`` overrides."""
    cfg = Config()
    if path is not None:
        if not os.path.isfile(path):
            raise UserInputError(f"config file not found: {path}")
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as e:
            raise UserInputError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise UserInputError(f"{path}: top level must be a mapping of sections")
        for section, entries in data.items():
            _section(cfg, section, path)
            if not isinstance(entries, dict):
                raise UserInputError(f"{path}: section {section} must be a mapping")
            for key, value in entries.items():
                _apply(cfg, section, key, value, path)
    for text in overrides:
        section, key, value = parse_override(text)
        _apply(cfg, section, key, value, f"-o {text}")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks that a single type cannot express."""
    positive = {"Global.max_steps": cfg.Global.max_steps,
                "Global.log_every": cfg.Global.log_every,
                "Global.eval_every": cfg.Global.eval_every,
                "Global.save_every": cfg.Global.save_every,
                "Model.num_classes": cfg.Model.num_classes,
                "Model.image_size": cfg.Model.image_size,
                "Data.batch_size": cfg.Data.batch_size,
                "Data.eval_batch_size": cfg.Data.eval_batch_size,
                "Global.keep_checkpoints": cfg.Global.keep_checkpoints}
    for name, value in positive.items():
        if value <= 0:
            raise UserInputError(f"{name} must be positive, got {value}")
    for name, value in {"Optimizer.accum_steps": cfg.Optimizer.accum_steps,
                        "Data.max_per_card_batch": cfg.Data.max_per_card_batch,
                        "Loss.kl_batch_size": cfg.Loss.kl_batch_size}.items():
        if value < 0:
            raise UserInputError(f"{name} must be >= 0, got {value}")
    if cfg.Loss.alpha < 0:
        raise UserInputError(f"Loss.alpha must be >= 0, got {cfg.Loss.alpha}")
    if not 0.0 < cfg.Data.val_fraction < 1.0:
        raise UserInputError(f"Data.val_fraction must be in (0, 1), got {cfg.Data.val_fraction}")


def save_config(cfg: Config, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
    os.replace(tmp, path)
