"""Which files a file source reads: hidden entries skipped, special files refused, and the data
root kept to.

- **Hidden** entries — names starting with ``.`` (``.DS_Store``, ``.ipynb_checkpoints``, macOS's
  AppleDouble ``._photo.jpg``) and ``__MACOSX`` folders — are skipped everywhere a folder is
  listed (training folders, ``tools/infer.py``'s folders) and named in the first log line.
- An image must be a **regular file** (a link to one is fine): a FIFO, a device such as
  ``/dev/zero`` or a socket would block the reader or never end.
- **Inside the root**: every image of a folder or list resolves, links followed, inside
  ``Data.root``, unless ``Data.allow_outside_root`` says the user keeps images elsewhere
  (absolute paths and ``../`` in lists, links out of the folder).
"""
from __future__ import annotations

import os
import stat

from rdrop_paddle.errors import UserInputError

HIDDEN_FOLDERS = ("__MACOSX",)


def hidden(name: str) -> bool:
    """A name the sources skip: dot-files and dot-folders, ``__MACOSX``."""
    return name.startswith(".") or name in HIDDEN_FOLDERS


def check_regular(path: str, where: str = "") -> None:
    """``path`` (links followed) must be a regular file; ``where`` prefixes the message
    (``list.txt:3: ``)."""
    try:
        mode = os.stat(path).st_mode
    except ValueError:  # a NUL byte in the path
        raise UserInputError(f"{where}{path!r}: a path with a NUL byte") from None
    except FileNotFoundError:
        raise UserInputError(f"{where}image not found: {path}") from None
    except OSError as e:
        raise UserInputError(f"{where}cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise UserInputError(f"{where}{path} is {kind}, not an image file")


class DataRoot:
    """``Data.root`` as the folder every image must resolve inside (unless ``allow_outside``)."""

    def __init__(self, root: str, allow_outside: bool = False) -> None:
        self.root, self.real, self.allow_outside = root, os.path.realpath(root or "."), allow_outside

    def check(self, path: str, where: str = "") -> None:
        if self.allow_outside:
            return
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.real]) != self.real:
            raise UserInputError(f"{where}{path} resolves to {real}, outside Data.root {self.root or '.'}; "
                                 f"set Data.allow_outside_root: true to read images kept elsewhere")


def named(paths: list[str], limit: int = 3) -> str:
    """``a, b, c and 7 more``: the first few of ``paths``."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
