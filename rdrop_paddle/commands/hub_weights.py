"""``Model.pretrained: hf-hub:ORG/NAME[@REVISION]``: the repository fetched and converted
(:mod:`rdrop_paddle.convert.by_name`), so that every tool reads a local path as before."""
from __future__ import annotations

import dataclasses

from rdrop_paddle.config.schema import Config
from rdrop_paddle.convert.by_name import converted
from rdrop_paddle.io.hub import is_hub


def resolve_pretrained(cfg: Config, notice=print, fetch: bool = True) -> Config:
    """``cfg`` with an ``hf-hub:`` ``Model.pretrained`` replaced by its converted local path.

    ``fetch=False`` (the ranks other than 0): an image model's weights are left unfetched, since
    rank 0 alone reads them and sends them to the others; a text model's folder (its
    ``config.json`` and tokenizer build the model and the data on every rank) is fetched on
    every node, once per node (a lock), or read from that node's cache."""
    name = cfg.Model.pretrained
    if not is_hub(name):
        return cfg
    from rdrop_paddle.tasks import TEXT_MODELS

    text = cfg.Model.name in TEXT_MODELS
    if not (fetch or text):
        return cfg
    m = cfg.Model
    out = converted(name, "" if text else m.name, m.num_classes, m.image_size, notice)
    notice(f"Model.pretrained {name}: {out}")
    return dataclasses.replace(cfg, Model=dataclasses.replace(cfg.Model, pretrained=out))
