"""Weights by name: ``hf-hub:ORG/NAME[@REVISION]`` fetched (:mod:`rdrop_paddle.io.hub`) and
converted once per repository commit into the data home (``$RDROP_DATA_HOME``, else
``~/.cache/rdrop_paddle``, under ``converted/ORG--NAME/COMMIT/``): a text model's converted folder,
or an image model's ``.pdparams`` for its name, class count and image size (resized as the
converter does).  A lock lets one process of a machine convert; the others use its result."""
from __future__ import annotations

import fcntl
import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import make_folder, open_regular
from rdrop_paddle.io.home import data_home
from rdrop_paddle.io.hub import is_hub, parse, snapshot, weights_file


def converted_home(name: str, commit: str) -> str:
    return os.path.join(data_home(), "converted", parse(name)[0].replace("/", "--"), commit)


def converted(name: str, model: str = "", num_classes: int = 0, image_size: int = 0, notice=print) -> str:
    """The local path of repository ``name`` converted: the text folder when ``model`` is empty
    (a BERT / ERNIE repository), else ``model``'s weights with a ``num_classes`` head at
    ``image_size`` px."""
    folder = snapshot(name)  # .../snapshots/<commit>
    source = weights_file(folder, name) if model else folder
    home = converted_home(name, os.path.basename(folder))
    make_folder(home, "the converted weights' folder (RDROP_DATA_HOME)")
    with os.fdopen(open_regular(os.path.join(home, ".lock"), os.O_WRONLY | os.O_CREAT), "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one process converts, the others use its result
        if not model:
            out = os.path.join(home, "text")
            if not os.path.isdir(out):
                from rdrop_paddle.convert.text import convert_text_folder

                for line in convert_text_folder(folder, out):
                    notice(f"notice: {line}")
            return out
        if not num_classes:
            raise UserInputError(f"Model.pretrained {name}: set Model.num_classes (the head is converted for it)")
        out = os.path.join(home, f"{model}-{num_classes}classes-{image_size}px.pdparams")
        if not os.path.isfile(out):
            from rdrop_paddle.convert import convert_checkpoint, save_state

            state, notices = convert_checkpoint(source, "auto", model, num_classes, image_size)
            for line in notices:
                notice(f"notice: {line}")
            save_state(state, out)
        return out


def from_pretrained(name: str, num_classes: int, hidden_dropout: float | None = None,
                    attention_dropout: float | None = None, notice=print):
    """:func:`rdrop_paddle.models.from_pretrained` for a converted folder or an ``hf-hub:`` name
    (a BERT / ERNIE repository, converted once and cached): the one door to a text classifier."""
    from rdrop_paddle.models import from_pretrained as from_folder

    folder = converted(name, notice=notice) if is_hub(name) else name
    return from_folder(folder, num_classes, hidden_dropout, attention_dropout, notice)
