"""Data sets fetched by name: one file from its official URL into the data home, verified, resumed.

    path = download(CIFAR100, "cifar-100-python.tar.gz")   # ~/.cache/rdrop_paddle/...

- The data home is ``$RDROP_DATA_HOME``, else ``~/.cache/rdrop_paddle`` (on AI Studio, point it
  at a mounted data set folder, or keep ``Data.root`` there).
- A mirror replaces the official URL: ``$RDROP_CIFAR100_URL`` (a file with another checksum,
  ``$RDROP_CIFAR100_MD5``).
- The bytes go to ``NAME.part`` and become ``NAME`` only once their MD5 is the published one: a
  partial or wrong file is never used.  An interrupted download resumes from ``NAME.part`` (HTTP
  ``Range``), within the run (a dropped connection or a 5xx answer is retried) or at the next.
- One process downloads, the others wait for it: an exclusive lock on ``NAME.lock`` (each node
  of a multi-node run fetches once, or finds the file).
- ``RDROP_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``), a network error or a stall of ``timeout``
  seconds is one error naming the URL, where to put the file and the variables to set.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.files import make_folder, open_regular
from rdrop_paddle.io.home import data_home


@dataclasses.dataclass(frozen=True)
class Source:
    """A published file: its URL, MD5, size bound and the variables that override them."""
    url: str
    md5: str
    max_bytes: int
    url_variable: str
    md5_variable: str

    def resolved(self) -> tuple[str, str]:
        return os.environ.get(self.url_variable) or self.url, os.environ.get(self.md5_variable) or self.md5


CIFAR100 = Source("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                  1 << 30, "RDROP_CIFAR100_URL", "RDROP_CIFAR100_MD5")
CHUNK = 1 << 20
RETRIES = 3


def _md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("RDROP_OFFLINE", "HF_HUB_OFFLINE"))


class _Progress:
    """A tqdm bar on a terminal; in a log, a line every 10 %."""

    def __init__(self, name: str, done: int, total: int | None) -> None:
        self.name, self.done, self.total, self.bar, self.shown = name, done, total, None, -1
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=name, leave=False)

    def add(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.total:
            tenth = 10 * self.done // self.total
            if tenth > self.shown:
                self.shown = tenth
                print(f"downloading {self.name}: {10 * tenth}% of {self.total / 1e6:.0f} MB", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fetch_once(url: str, part: str, max_bytes: int, timeout: float, name: str) -> None:
    """Append the rest of ``url`` to ``part`` (``Range`` from its size); raises what urllib raises."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already whole: its checksum decides
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignores Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if (total or 0) > max_bytes:
            raise UserInputError(f"{url} announces {total:,} bytes, more than the {max_bytes:,} expected; not the file")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if have else os.O_TRUNC)
        progress = _Progress(name, have, total)
        try:
            with os.fdopen(open_regular(part, flags), "ab" if have else "wb") as out:
                os.set_blocking(out.fileno(), True)
                while chunk := response.read1(CHUNK):  # what has arrived: a stall loses nothing
                    have += len(chunk)
                    if have > max_bytes:
                        raise UserInputError(f"{url} sent more than {max_bytes:,} bytes; not the file")
                    out.write(chunk)
                    progress.add(len(chunk))
        finally:
            progress.close()
        if total is not None and have < total:
            raise ConnectionError(f"the connection closed after {have:,} of {total:,} bytes")


def download(source: Source, name: str, home: str | None = None, timeout: float = 60.0) -> str:
    """The path of ``name`` in the data home, fetched from ``source`` if it is not there yet."""
    home = home or data_home()
    dest, part = os.path.join(home, name), os.path.join(home, name + ".part")
    url, md5 = source.resolved()
    where = (f"download {url} yourself and put it at {dest} (or set -o Data.root=PATH), or set "
             f"{source.url_variable} to a mirror; RDROP_DATA_HOME moves the data home")
    make_folder(home, "the data home (RDROP_DATA_HOME)")
    with os.fdopen(open_regular(dest + ".lock", os.O_WRONLY | os.O_CREAT), "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another process may be fetching it: wait for it
        if os.path.isfile(dest):
            return dest
        if _offline():
            raise UserInputError(f"{name} is not in {home} and the network is off (RDROP_OFFLINE/HF_HUB_OFFLINE): {where}")
        print(f"downloading {url} to {dest}", flush=True)
        for attempt in range(1, RETRIES + 1):
            try:
                _fetch_once(url, part, source.max_bytes, timeout, name)
                break
            except urllib.error.HTTPError as e:
                if e.code < 500 or attempt == RETRIES:
                    raise UserInputError(f"cannot download {name}: {url} answered HTTP {e.code} {e.reason}; {where}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS,
                                                          errno.EACCES):  # full disk or quota, read-only, no permission
                    raise UserInputError(f"cannot write {part}: {e.strerror}; nothing was kept as {dest}") from None
                if attempt == RETRIES:
                    reason = getattr(e, "reason", None) or e
                    raise UserInputError(f"cannot download {name} from {url} ({reason}); what arrived is kept in "
                                         f"{part} and the next run resumes it; or {where}") from None
            time.sleep(min(2 ** attempt, 10) * 0.1)
        got = _md5(part)
        if got != md5:
            os.remove(part)
            raise UserInputError(f"{url} gave a file whose MD5 is {got}, not {md5}: it was removed, nothing is used; "
                                 f"try again, or {where}")
        try:
            os.replace(part, dest)
        except OSError as e:
            raise UserInputError(f"cannot put the download at {dest}: {e.strerror or e} (it stays in {part})") from None
        print(f"downloaded {dest} (MD5 {md5} checked)", flush=True)
    return dest
