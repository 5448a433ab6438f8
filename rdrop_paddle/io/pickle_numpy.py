"""What the restricted unpickler (:mod:`rdrop_paddle.io.pickles`) builds for a pickle's globals:
NumPy arrays, dtypes and scalars of plain data, and ``bytes``/``bytearray``/``_codecs.encode``
of text — each from checked arguments only.

A crafted pickle can otherwise crash NumPy (an object array ``__setstate__`` from a list shorter
than its shape segfaults numpy 2; a dtype ``__setstate__`` of the wrong type raises
``SystemError``), so no object, structured, void or sub-array dtype is ever constructed, a dtype
is always a fresh copy, and array bytes must be exactly ``prod(shape) * itemsize``.
"""
from __future__ import annotations

import codecs
import pickle
from typing import Any, Callable

import numpy as np

NUMPY_CORE = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
PLAIN_KINDS = "biufcSUMm"  # numbers, text and dates: nothing that holds a pointer or fields
MAX_DIMS = 32
MAX_DIM = 1 << 48  # elements along one axis
DATETIME_UNITS = {b"Y", b"M", b"W", b"D", b"h", b"m", b"s", b"ms", b"us", b"ns", b"ps", b"fs", b"as",
                   b"generic"}


def refuse(message: str) -> None:
    raise pickle.UnpicklingError(message)


TEXT_CODECS = {"latin1", "latin-1", "iso8859-1", "iso-8859-1", "utf-8", "utf8", "ascii"}


def encode_text(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as pickle protocol 2 uses it for bytes; text codecs only."""
    if not isinstance(text, str) or encoding not in TEXT_CODECS:
        refuse(f"_codecs.encode only of text with a text codec, not {encoding!r:.40}")
    return codecs.encode(text, encoding)


def of_bytes(kind: type) -> Callable:
    """``bytes``/``bytearray`` of text or bytes only: ``bytearray(10**12)`` would allocate."""
    def make(source: Any = b"", *args: Any) -> Any:
        if not isinstance(source, (bytes, str)) or not all(a in TEXT_CODECS for a in args[:1]) or len(args) > 1:
            refuse(f"{kind.__name__} only of bytes, or of text with a text codec")
        return kind(source, *args)
    return make


def plain(dtype: Any) -> np.dtype:
    """``dtype`` if it is a NumPy dtype of plain data (see :data:`PLAIN_KINDS`)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in PLAIN_KINDS or dtype.hasobject \
            or dtype.fields is not None or dtype.subdtype is not None:
        refuse(f"refusing NumPy dtype {dtype!s:.60}: no arrays of Python objects or records, only "
                f"numbers, text and dates")
    return dtype


def make_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """``numpy.dtype`` as pickles call it: a short type string of plain data, always a copy
    (``BUILD`` may then set its byte order without touching NumPy's shared instance)."""
    if not isinstance(spec, str) or len(spec) > 24 or align not in (False, 0) or copy not in (True, False, 0, 1):
        refuse(f"numpy.dtype with arguments {spec!r:.60}, {align!r:.20}")
    try:
        return plain(np.dtype(spec, False, True))
    except (TypeError, ValueError, SyntaxError) as e:  # numpy parses "(2,)f4" & co. as Python
        refuse(f"numpy.dtype({spec!r}): {e}"[:200])


def set_dtype_state(dtype: np.dtype, state: Any) -> None:
    """``dtype.__setstate__`` with NumPy's own state tuple for this kind of dtype, checked."""
    flexible = dtype.kind in "SU"
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] != len(state) - 5:
        refuse("dtype state is not NumPy's (version, byte order, ...) tuple")
    _, order, subarray, names, fields, elsize, alignment, flags = state[:8]
    expect = (dtype.itemsize, dtype.alignment) if flexible else (-1, -1)
    if order not in ("<", ">", "|", "=") or subarray is not None or names is not None or fields is not None \
            or type(elsize) is not int or type(alignment) is not int or (elsize, alignment) != expect \
            or type(flags) is not int or flags != dtype.flags:
        refuse(f"dtype state {state!r:.120} does not describe a {dtype}")
    if dtype.kind in "Mm":
        meta = state[8] if len(state) == 9 else None
        if not (isinstance(meta, tuple) and len(meta) == 2 and meta[0] is None and isinstance(meta[1], tuple)
                and len(meta[1]) == 4 and meta[1][0] in DATETIME_UNITS
                and all(type(v) is int and 1 <= v < 1 << 31 for v in meta[1][1:])):
            refuse(f"date dtype state {state!r:.120} has no valid unit")
    elif len(state) == 9:
        refuse(f"dtype state {state!r:.120} carries metadata")
    dtype.__setstate__(state)
    plain(dtype)


def checked_array(shape: Any, dtype: Any, data: Any) -> bytes:
    """``data`` as bytes if it is exactly the ``prod(shape) * itemsize`` bytes of a plain dtype."""
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMS \
            or not all(type(n) is int and 0 <= n < MAX_DIM for n in shape):
        refuse(f"array shape {shape!r:.100} is not up to {MAX_DIMS} non-negative sizes")
    if isinstance(data, str):  # Python 2 pickles read with encoding='latin1'
        data = data.encode("latin1")
    if isinstance(data, bytearray):  # protocol 5
        data = bytes(data)
    if not isinstance(data, bytes):
        refuse(f"array data is {type(data).__name__}, not bytes")
    need = plain(dtype).itemsize
    for n in shape:
        need *= n
    if len(data) != need:
        refuse(f"array of shape {list(shape)} and {dtype} needs {need} bytes, found {len(data)}")
    return data


def set_array_state(array: np.ndarray, state: Any) -> None:
    """``ndarray.__setstate__`` with ``(version, shape, dtype, fortran, bytes)``, checked."""
    if not isinstance(state, tuple) or len(state) not in (4, 5) or (len(state) == 5 and state[0] != 1):
        refuse("array state is not NumPy's (version, shape, dtype, order, data) tuple")
    shape, dtype, fortran, data = state[-4:]
    if not isinstance(fortran, bool):
        refuse("array order flag is not a bool")
    array.__setstate__((shape, dtype, fortran, checked_array(shape, dtype, data)))


def frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy._core.numeric._frombuffer``, how protocol 5 pickles arrays: checked the same way."""
    if order not in ("C", "F"):
        refuse(f"array order {order!r:.20}")
    return np.frombuffer(checked_array(shape, dtype, data), dtype).reshape(shape, order=order)


def scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar``: one plain value from exactly ``itemsize`` bytes."""
    if not isinstance(data, bytes) or len(data) != plain(dtype).itemsize:
        refuse("numpy scalar whose bytes do not match its dtype")
    return NUMPY_CORE.multiarray.scalar(dtype, data)


class NdarrayClass:
    """What the global ``numpy.ndarray`` unpickles to: accepted only as the first argument of
    :func:`reconstruct` (calling it, which would allocate any shape, fails)."""


def reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """NumPy's pickle entry point as ``ndarray.__reduce__`` writes it: an empty array for
    ``BUILD`` to fill (the dtype argument is a placeholder; the state carries the real one)."""
    if cls is not NdarrayClass or shape != (0,):
        refuse("numpy _reconstruct with other arguments than ndarray.__reduce__'s")
    return np.ndarray((0,), np.uint8)
