"""Reading a config: a YAML file (safe loader, YAML 1.2 scalars), then ``-o Section.key=value``
overrides, each value checked against the schema's type, then :func:`~.checks.validate`.

Unknown sections or keys, wrong types and values outside a field's choices or range raise
:class:`~rdrop_paddle.errors.UserInputError` naming them.  Only ``true``/``false`` are
booleans (``off``, ``yes`` stay strings) and ``1e-3`` is a float.  An override of a text
field takes the text as written (``-o Global.output_dir=yes`` is the folder ``yes``); ``~``
in paths is expanded.
"""
from __future__ import annotations

import dataclasses
import os
import re
import typing
from typing import Any, Iterable

import yaml

from rdrop_paddle.config.checks import validate
from rdrop_paddle.config.schema import PATH_KEYS, Config, short_repr
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import atomic_write


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


_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}


def _coerce(where: str, value: Any, hint: Any, choices: tuple | None) -> Any:
    """Check one value against its declared type; ints are accepted as floats."""
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    typ = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None and optional:
        return None
    if typing.get_origin(hint) is list:  # a list of floats (Data.scale)
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise UserInputError(f"{where}: expected a list of numbers, got {short_repr(value)}")
        return [float(v) for v in value]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is str and value is None:
        value = ""
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UserInputError(
            f"{where}: expected {typ.__name__}{' or null' if optional else ''}, "
            f"got {type(value).__name__} {short_repr(value)}")
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
        raise UserInputError(f"malformed override {short_repr(text)}: expected Section.key=value")
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
    raise UserInputError(f"-o {short_repr(text)}: of PaddleClas's AMP section only use_amp (True or False) and "
                         f"level are understood; they set Global.amp and Global.amp_level")


def _override_value(cfg: Config, section: str, key: str, raw: str, text: str) -> Any:
    """A text field takes the text as written; other fields parse it as a YAML scalar."""
    name = _field(cfg, section, key, f"-o {text}").name
    if typing.get_type_hints(type(getattr(cfg, section)))[name] is str:
        return raw.strip()
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise UserInputError(f"override {short_repr(text)}: value is not valid YAML ({e})") from None
    is_list = typing.get_origin(typing.get_type_hints(type(getattr(cfg, section)))[name]) is list
    if isinstance(value, dict) or (isinstance(value, list) and not is_list):
        raise UserInputError(f"override {short_repr(text)}: value must be a scalar")
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
    validate(cfg)
    if cfg.Global.model_subdir:
        cfg.Global.output_dir, cfg.Global.model_subdir = os.path.join(cfg.Global.output_dir, cfg.Model.name), False
    return cfg


def save_config(cfg: Config, path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)

    atomic_write(path, write)
