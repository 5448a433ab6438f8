"""``Model.pretrained: hf-hub:ORG/NAME[@REVISION]``: the repository fetched by name
(:mod:`rdrop_paddle.io.hub`) and converted once per repository commit into the data home
(``$RDROP_DATA_HOME``, else ``~/.cache/rdrop_paddle``, under ``converted/``), so that every tool
reads a local path as before: a text model's converted folder, or an image model's
``.pdparams`` for its ``Model.name``, class count and image size (resized as the converter does)."""
from __future__ import annotations

import dataclasses
import fcntl
import os

from rdrop_paddle.config.schema import Config
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import make_folder, open_regular
from rdrop_paddle.io.hub import is_hub, parse, snapshot, weights_file


def converted_home(name: str, commit: str) -> str:
    from rdrop_paddle.data.download import data_home

    return os.path.join(data_home(), "converted", parse(name)[0].replace("/", "--"), commit)


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
    folder = snapshot(name)  # .../snapshots/<commit>
    source = folder if text else weights_file(folder, name)
    home = converted_home(name, os.path.basename(folder))
    make_folder(home, "the converted weights' folder (RDROP_DATA_HOME)")
    with os.fdopen(open_regular(os.path.join(home, ".lock"), os.O_WRONLY | os.O_CREAT), "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one process converts, the others use its result
        if text:
            out = os.path.join(home, "text")
            if not os.path.isdir(out):
                from rdrop_paddle.convert.text import convert_text_folder

                for line in convert_text_folder(folder, out):
                    notice(f"notice: {line}")
        else:
            m = cfg.Model
            if not m.num_classes:
                raise UserInputError(f"Model.pretrained {name}: set Model.num_classes (the head is converted for it)")
            out = os.path.join(home, f"{m.name}-{m.num_classes}classes-{m.image_size}px.pdparams")
            if not os.path.isfile(out):
                from rdrop_paddle.convert import convert_checkpoint, save_state

                state, notices = convert_checkpoint(source, "auto", m.name, m.num_classes, m.image_size)
                for line in notices:
                    notice(f"notice: {line}")
                save_state(state, out)
    notice(f"Model.pretrained {name}: {out}")
    return dataclasses.replace(cfg, Model=dataclasses.replace(cfg.Model, pretrained=out))
