"""The one restricted unpickler every pickle the package reads goes through.

Paddle's ``.pdparams``/``.pdopt``, the CIFAR-100 split files, x2paddle's output and PyTorch
zip checkpoints are pickles; :func:`load_pickle` reads them with an unpickler that builds
only NumPy arrays, dtypes and scalars of plain data, plain containers and the globals a
caller adds explicitly (the PyTorch reader adds its own tensor builders).  Any other global
— ``os.system``, a class with ``__reduce__`` — is refused with
:class:`~rdrop_paddle.errors.UnsafeFileError` naming the file and the global, before anything
is called.

NumPy itself is only ever handed checked arguments: a crafted pickle can otherwise crash it
(an object array ``__setstate__`` from a list shorter than its shape segfaults numpy 2, a
dtype ``__setstate__`` of the wrong type raises ``SystemError``).  So

- no object, structured, void or sub-array dtype is ever constructed (``dtype('O')`` is
  refused where it is named), and a dtype is always a fresh copy, never NumPy's singleton;
- ``BUILD`` (``__setstate__``) is allowed on three things only, each with its state checked
  for type, length and values first: an array just made by ``_reconstruct`` (shape, plain
  dtype, order flag and exactly ``prod(shape) * itemsize`` bytes), a dtype just made by
  ``numpy.dtype`` (NumPy's own state tuple for that dtype), each once, and an
  ``OrderedDict``'s attributes (PyTorch's ``_metadata``).

It subclasses the pure-Python ``pickle._Unpickler`` to own ``BUILD``; array bytes are one
opcode each, so large checkpoints load at the same speed.  Its work is bounded by the file:
a length the pickle announces (``BINBYTES8``, ``BYTEARRAY8``, a frame, ...) beyond the bytes
left in it is refused before anything is allocated, and containers nest at most
:data:`MAX_DEPTH` deep — checked before a key is hashed (hashing a million-deep tuple recurses
in C and kills the interpreter) and on the result.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import struct
from typing import Any, Callable, Mapping

import numpy as np

from rdrop_paddle.errors import UnsafeFileError, UserInputError
from rdrop_paddle.io.pickle_numpy import (NdarrayClass, encode_text, frombuffer, make_dtype, of_bytes, reconstruct,
                                       refuse, scalar, set_array_state, set_dtype_state)

MAX_DEPTH = 100  # containers in containers; checkpoints nest 3 to 5 deep


_CONTAINERS = (tuple, list, dict, set, frozenset, collections.OrderedDict)


def _children(obj: Any) -> Any:
    return (*obj.keys(), *obj.values()) if isinstance(obj, dict) else obj


def _check_nesting(root: Any, what: str) -> None:
    """Refuse ``root`` if containers in it nest deeper than :data:`MAX_DEPTH` (the longest path,
    shared parts counted once) or contain themselves; iterative, linear in its size."""
    if type(root) not in _CONTAINERS:
        return
    depth: dict[int, int] = {}
    path: set[int] = set()
    stack = [(root, False)]
    while stack:
        obj, leaving = stack.pop()
        key = id(obj)
        if leaving:
            path.discard(key)
            d = 1 + max((depth[id(c)] for c in _children(obj) if type(c) in _CONTAINERS), default=0)
            if d > MAX_DEPTH:
                refuse(f"{what} has containers nested more than {MAX_DEPTH} levels deep")
            depth[key] = d
        elif key not in depth:
            if key in path:
                refuse(f"{what} contains itself")
            path.add(key)
            if len(path) > MAX_DEPTH:
                refuse(f"{what} has containers nested more than {MAX_DEPTH} levels deep")
            stack.append((obj, True))
            stack.extend((c, False) for c in _children(obj) if type(c) in _CONTAINERS)


def _hashing(kind: type) -> Callable:
    """``set``, ``frozenset``, ``dict``, ``OrderedDict`` as globals: their argument checked first."""
    def make(*args: Any) -> Any:
        for arg in args:
            _check_nesting(arg, f"the argument of {kind.__name__}")
        return kind(*args)
    return make


SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _hashing(collections.OrderedDict),
    ("builtins", "tuple"): tuple, ("builtins", "list"): list, ("builtins", "dict"): _hashing(dict),
    ("builtins", "set"): _hashing(set), ("builtins", "frozenset"): _hashing(frozenset),
    ("builtins", "bytearray"): of_bytes(bytearray), ("builtins", "bytes"): of_bytes(bytes), ("builtins", "complex"): complex,
    ("_codecs", "encode"): encode_text,
    ("numpy", "ndarray"): NdarrayClass, ("numpy", "dtype"): make_dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # pickles of either numpy
    SAFE_GLOBALS[_module, "_reconstruct"] = reconstruct
    SAFE_GLOBALS[_module, "scalar"] = scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    SAFE_GLOBALS[_module, "_frombuffer"] = frombuffer


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a global a protocol-2 pickle names the Python 2 way."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[module, name]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Forbidden(pickle.UnpicklingError):
    pass


class _Bounded:
    """A binary file read no further than its end: ``read(n)`` for more than is left fails
    before a buffer of ``n`` bytes is allocated."""

    def __init__(self, fh) -> None:
        self._fh = fh
        self.size = fh.seek(0, io.SEEK_END)
        fh.seek(0)

    def left(self) -> int:
        return self.size - self._fh.tell()

    def read(self, n: int = -1) -> bytes:
        if n is not None and n > self.left():
            refuse(f"the pickle announces {n} bytes where {self.left()} are left")
        return self._fh.read(n)

    def readinto(self, buffer) -> int:
        self.read(0 if len(buffer) <= self.left() else len(buffer))  # refuses what is not there
        return self._fh.readinto(buffer)

    def readline(self) -> bytes:
        return self._fh.readline()


class _RestrictedUnpickler(pickle._Unpickler):  # the Python one: its BUILD can be replaced
    def __init__(self, file, allowed: Mapping[tuple[str, str], Any], persistent_load, **kwargs):
        file = _Bounded(file)
        self._bounded = file
        super().__init__(file, **kwargs)
        if persistent_load is not None:
            self.persistent_load = persistent_load
        self._unbuilt: dict[int, Any] = {}  # what BUILD may set: fresh arrays and dtypes, by id
        self._allowed = {key: self._fresh(value) if value is reconstruct or value is make_dtype else value
                         for key, value in allowed.items()}

    def _fresh(self, make: Callable) -> Callable:
        def call(*args: Any) -> Any:
            out = make(*args)
            self._unbuilt[id(out)] = out
            return out
        return call

    def find_class(self, module: str, name: str) -> Any:
        module, name = _python3_name(module, name)
        try:
            return self._allowed[module, name]
        except (KeyError, TypeError):
            raise _Forbidden(f"{module}.{name}"[:200]) from None

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, np.ndarray) and self._unbuilt.pop(id(inst), None) is inst:
            set_array_state(inst, state)
        elif isinstance(inst, np.dtype) and self._unbuilt.pop(id(inst), None) is inst:
            set_dtype_state(inst, state)
        elif type(inst) is collections.OrderedDict and isinstance(state, dict) \
                and all(isinstance(k, str) and not k.startswith("__") for k in state):
            for key, value in state.items():  # torch's state_dict()._metadata
                setattr(inst, key, value)
        else:
            refuse(f"__setstate__ of {type(inst).__name__} is not allowed")

    def _left(self) -> int:
        """Bytes of the pickle not read yet (the current frame's and the file's)."""
        frame = self._unframer.current_frame
        with (frame.getbuffer() if frame else memoryview(b"")) as buffer:
            in_frame = len(buffer) - frame.tell() if frame else 0
        return in_frame + self._bounded.left()

    def load_bytearray8(self) -> None:  # pickle's allocates the announced length, then reads
        n, = struct.unpack("<Q", self.read(8))
        if n > self._left():
            refuse(f"BYTEARRAY8 announces {n} bytes where {self._left()} are left")
        buffer = bytearray(n)
        self.readinto(buffer)
        self.append(buffer)

    def _key(self, key: Any) -> Any:
        _check_nesting(key, "a dictionary key")
        return key

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.append({self._key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self.stack[-1][self._key(key)] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[self._key(items[i])] = items[i + 1]

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        _check_nesting(items, "a frozenset")
        self.append(frozenset(items))

    def load_additems(self) -> None:
        items = self.pop_mark()
        _check_nesting(items, "a set")
        target = self.stack[-1]
        for item in items:
            target.add(item)

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    dispatch[pickle.ADDITEMS[0]] = load_additems


def load_pickle(source: str | bytes, what: str | None = None, extra_globals: Mapping | None = None,
                persistent_load: Callable | None = None, encoding: str = "ASCII") -> Any:
    """Unpickle ``source`` (a path or the bytes of one) allowing only :data:`SAFE_GLOBALS`
    (plus ``extra_globals``).  ``what`` names the file in errors."""
    what = what or (source if isinstance(source, str) else "pickle")
    allowed = {**SAFE_GLOBALS, **(extra_globals or {})}
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                out = _RestrictedUnpickler(fh, allowed, persistent_load, encoding=encoding).load()
        else:
            out = _RestrictedUnpickler(io.BytesIO(source), allowed, persistent_load, encoding=encoding).load()
        _check_nesting(out, "the pickle")
    except _Forbidden as e:
        raise UnsafeFileError(f"{what}: refusing to load it: the pickle calls {e}, which is not "
                              f"a NumPy array or plain container; nothing from it was run") from None
    except FileNotFoundError:
        raise UserInputError(f"file not found: {what}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OSError, RecursionError, OverflowError, struct.error) as e:
        raise UserInputError(f"{what}: not a readable file of this kind "
                             f"({type(e).__name__}: {short(e)})") from None
    return out


def short(e: BaseException, limit: int = 200) -> str:
    """An exception's message, at most ``limit`` characters (UserInputError makes it one line)."""
    text = str(e)
    return text if len(text) <= limit else text[:limit] + "..."
