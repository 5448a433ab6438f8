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
import codecs
import collections
import io
import pickle
import struct
from typing import Any, Callable, Mapping

import numpy as np

from rdrop_paddle.errors import UnsafeFileError, UserInputError

_NUMPY_CORE = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
PLAIN_KINDS = "biufcSUMm"  # numbers, text and dates: nothing that holds a pointer or fields
MAX_DIMS = 32
MAX_DIM = 1 << 48  # elements along one axis
MAX_DEPTH = 100  # containers in containers; checkpoints nest 3 to 5 deep
_DATETIME_UNITS = {b"Y", b"M", b"W", b"D", b"h", b"m", b"s", b"ms", b"us", b"ns", b"ps", b"fs", b"as",
                   b"generic"}


def _refuse(message: str) -> None:
    raise pickle.UnpicklingError(message)


_TEXT_CODECS = {"latin1", "latin-1", "iso8859-1", "iso-8859-1", "utf-8", "utf8", "ascii"}


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as pickle protocol 2 uses it for bytes; text codecs only."""
    if not isinstance(text, str) or encoding not in _TEXT_CODECS:
        _refuse(f"_codecs.encode only of text with a text codec, not {encoding!r:.40}")
    return codecs.encode(text, encoding)


def _of_bytes(kind: type) -> Callable:
    """``bytes``/``bytearray`` of text or bytes only: ``bytearray(10**12)`` would allocate."""
    def make(source: Any = b"", *args: Any) -> Any:
        if not isinstance(source, (bytes, str)) or not all(a in _TEXT_CODECS for a in args[:1]) or len(args) > 1:
            _refuse(f"{kind.__name__} only of bytes, or of text with a text codec")
        return kind(source, *args)
    return make


def _plain(dtype: Any) -> np.dtype:
    """``dtype`` if it is a NumPy dtype of plain data (see :data:`PLAIN_KINDS`)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in PLAIN_KINDS or dtype.hasobject \
            or dtype.fields is not None or dtype.subdtype is not None:
        _refuse(f"refusing NumPy dtype {dtype!s:.60}: no arrays of Python objects or records, only "
                f"numbers, text and dates")
    return dtype


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """``numpy.dtype`` as pickles call it: a short type string of plain data, always a copy
    (``BUILD`` may then set its byte order without touching NumPy's shared instance)."""
    if not isinstance(spec, str) or len(spec) > 24 or align not in (False, 0) or copy not in (True, False, 0, 1):
        _refuse(f"numpy.dtype with arguments {spec!r:.60}, {align!r:.20}")
    try:
        return _plain(np.dtype(spec, False, True))
    except (TypeError, ValueError, SyntaxError) as e:  # numpy parses "(2,)f4" & co. as Python
        _refuse(f"numpy.dtype({spec!r}): {e}"[:200])


def _set_dtype_state(dtype: np.dtype, state: Any) -> None:
    """``dtype.__setstate__`` with NumPy's own state tuple for this kind of dtype, checked."""
    flexible = dtype.kind in "SU"
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] != len(state) - 5:
        _refuse("dtype state is not NumPy's (version, byte order, ...) tuple")
    _, order, subarray, names, fields, elsize, alignment, flags = state[:8]
    expect = (dtype.itemsize, dtype.alignment) if flexible else (-1, -1)
    if order not in ("<", ">", "|", "=") or subarray is not None or names is not None or fields is not None \
            or type(elsize) is not int or type(alignment) is not int or (elsize, alignment) != expect \
            or type(flags) is not int or flags != dtype.flags:
        _refuse(f"dtype state {state!r:.120} does not describe a {dtype}")
    if dtype.kind in "Mm":
        meta = state[8] if len(state) == 9 else None
        if not (isinstance(meta, tuple) and len(meta) == 2 and meta[0] is None and isinstance(meta[1], tuple)
                and len(meta[1]) == 4 and meta[1][0] in _DATETIME_UNITS
                and all(type(v) is int and 1 <= v < 1 << 31 for v in meta[1][1:])):
            _refuse(f"date dtype state {state!r:.120} has no valid unit")
    elif len(state) == 9:
        _refuse(f"dtype state {state!r:.120} carries metadata")
    dtype.__setstate__(state)
    _plain(dtype)


def _checked_array(shape: Any, dtype: Any, data: Any) -> bytes:
    """``data`` as bytes if it is exactly the ``prod(shape) * itemsize`` bytes of a plain dtype."""
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMS \
            or not all(type(n) is int and 0 <= n < MAX_DIM for n in shape):
        _refuse(f"array shape {shape!r:.100} is not up to {MAX_DIMS} non-negative sizes")
    if isinstance(data, str):  # Python 2 pickles read with encoding='latin1'
        data = data.encode("latin1")
    if isinstance(data, bytearray):  # protocol 5
        data = bytes(data)
    if not isinstance(data, bytes):
        _refuse(f"array data is {type(data).__name__}, not bytes")
    need = _plain(dtype).itemsize
    for n in shape:
        need *= n
    if len(data) != need:
        _refuse(f"array of shape {list(shape)} and {dtype} needs {need} bytes, found {len(data)}")
    return data


def _set_array_state(array: np.ndarray, state: Any) -> None:
    """``ndarray.__setstate__`` with ``(version, shape, dtype, fortran, bytes)``, checked."""
    if not isinstance(state, tuple) or len(state) not in (4, 5) or (len(state) == 5 and state[0] != 1):
        _refuse("array state is not NumPy's (version, shape, dtype, order, data) tuple")
    shape, dtype, fortran, data = state[-4:]
    if not isinstance(fortran, bool):
        _refuse("array order flag is not a bool")
    array.__setstate__((shape, dtype, fortran, _checked_array(shape, dtype, data)))


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy._core.numeric._frombuffer``, how protocol 5 pickles arrays: checked the same way."""
    if order not in ("C", "F"):
        _refuse(f"array order {order!r:.20}")
    return np.frombuffer(_checked_array(shape, dtype, data), dtype).reshape(shape, order=order)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar``: one plain value from exactly ``itemsize`` bytes."""
    if not isinstance(data, bytes) or len(data) != _plain(dtype).itemsize:
        _refuse("numpy scalar whose bytes do not match its dtype")
    return _NUMPY_CORE.multiarray.scalar(dtype, data)


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
                _refuse(f"{what} nests containers more than {MAX_DEPTH} deep")
            depth[key] = d
        elif key not in depth:
            if key in path:
                _refuse(f"{what} contains itself")
            path.add(key)
            if len(path) > MAX_DEPTH:
                _refuse(f"{what} nests containers more than {MAX_DEPTH} deep")
            stack.append((obj, True))
            stack.extend((c, False) for c in _children(obj) if type(c) in _CONTAINERS)


def _hashing(kind: type) -> Callable:
    """``set``, ``frozenset``, ``dict``, ``OrderedDict`` as globals: their argument checked first."""
    def make(*args: Any) -> Any:
        for arg in args:
            _check_nesting(arg, f"the argument of {kind.__name__}")
        return kind(*args)
    return make


class _NdarrayClass:
    """What the global ``numpy.ndarray`` unpickles to: accepted only as the first argument of
    :func:`_reconstruct` (calling it, which would allocate any shape, fails)."""


def _reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """NumPy's pickle entry point as ``ndarray.__reduce__`` writes it: an empty array for
    ``BUILD`` to fill (the dtype argument is a placeholder; the state carries the real one)."""
    if cls is not _NdarrayClass or shape != (0,):
        _refuse("numpy _reconstruct with other arguments than ndarray.__reduce__'s")
    return np.ndarray((0,), np.uint8)


SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _hashing(collections.OrderedDict),
    ("builtins", "tuple"): tuple, ("builtins", "list"): list, ("builtins", "dict"): _hashing(dict),
    ("builtins", "set"): _hashing(set), ("builtins", "frozenset"): _hashing(frozenset),
    ("builtins", "bytearray"): _of_bytes(bytearray), ("builtins", "bytes"): _of_bytes(bytes), ("builtins", "complex"): complex,
    ("_codecs", "encode"): _encode,
    ("numpy", "ndarray"): _NdarrayClass, ("numpy", "dtype"): _dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # pickles of either numpy
    SAFE_GLOBALS[_module, "_reconstruct"] = _reconstruct
    SAFE_GLOBALS[_module, "scalar"] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    SAFE_GLOBALS[_module, "_frombuffer"] = _frombuffer


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
            _refuse(f"the pickle announces {n} bytes where {self.left()} are left")
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
        self._allowed = {key: self._fresh(value) if value is _reconstruct or value is _dtype else value
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
            _set_array_state(inst, state)
        elif isinstance(inst, np.dtype) and self._unbuilt.pop(id(inst), None) is inst:
            _set_dtype_state(inst, state)
        elif type(inst) is collections.OrderedDict and isinstance(state, dict) \
                and all(isinstance(k, str) and not k.startswith("__") for k in state):
            for key, value in state.items():  # torch's state_dict()._metadata
                setattr(inst, key, value)
        else:
            _refuse(f"__setstate__ of {type(inst).__name__} is not allowed")

    def _left(self) -> int:
        """Bytes of the pickle not read yet (the current frame's and the file's)."""
        frame = self._unframer.current_frame
        with (frame.getbuffer() if frame else memoryview(b"")) as buffer:
            in_frame = len(buffer) - frame.tell() if frame else 0
        return in_frame + self._bounded.left()

    def load_bytearray8(self) -> None:  # pickle's allocates the announced length, then reads
        n, = struct.unpack("<Q", self.read(8))
        if n > self._left():
            _refuse(f"BYTEARRAY8 announces {n} bytes where {self._left()} are left")
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
