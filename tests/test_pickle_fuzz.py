"""A structure-aware fuzzer for the restricted unpickler (``rdrop_paddle/pickles.py``).

Cases are random opcode programs over the globals the unpickler allows (and a few it does
not): arrays rebuilt with random states, dtypes with random states, scalars, containers,
calls, ``BUILD`` on anything, memo references, containers nested up to 300,000 deep used as
values, dictionary keys and set members, lengths announced beyond the end of the file, and
byte-level damage on top.  They run in
forked children so that a crash inside NumPy is seen as a crash: every case must end in a
result or one ``UserInputError``.  ``RDROP_PICKLE_FUZZ=N`` runs N cases (5,000 in the suite).
"""
import os
import pickle
import random
import signal
import struct

import numpy as np
import pytest

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io.pickles import load_pickle

P = pickle
GLOBALS = [("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
           ("collections", "OrderedDict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "dict"),
           ("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "bytearray"), ("builtins", "complex"),
           ("_codecs", "encode"), ("builtins", "eval"), ("os", "system"), ("numpy", "frombuffer")]
TEXT = ["f4", "<f4", ">f8", "O", "O8", "V8", "V4", "f4,i4", "(2,)f4", "U5", "S3", "M8", "M8[s]", "m8", "b1",
        "<", ">", "|", "=", "b", "latin1", "utf-8", "hex", "rot13", "", "x" * 40, "c16", "i8", "u2"]


def _str(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return P.SHORT_BINUNICODE + bytes([len(raw)]) + raw if len(raw) < 256 else \
        P.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _bytes(raw: bytes) -> bytes:
    return P.SHORT_BINBYTES + bytes([len(raw)]) + raw if len(raw) < 256 else \
        P.BINBYTES + struct.pack("<I", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return P.GLOBAL + f"{module}\n{name}\n".encode()


class Program:
    """Random opcode programs; each ``value`` pushes exactly one object (before damage)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.memo = rng, 0

    def atom(self) -> bytes:
        r = self.rng
        kind = r.randrange(9)
        if kind == 0:
            return r.choice([P.NONE, P.NEWTRUE, P.NEWFALSE])
        if kind == 1:
            return P.BININT1 + bytes([r.randrange(256)])
        if kind == 2:
            return P.BININT + struct.pack("<i", r.choice([-1, 0, 1, 4, 63, 2 ** 31 - 1, -2 ** 31, r.randrange(-9, 99)]))
        if kind == 3:
            n = r.randrange(12)
            return P.LONG1 + bytes([n]) + bytes(r.randrange(256) for _ in range(n))
        if kind == 4:
            return P.BINFLOAT + struct.pack(">d", r.choice([0.0, -1.5, float("nan"), float("inf"), 1e308]))
        if kind in (5, 6):
            return _str(r.choice(TEXT))
        n = r.choice([0, 1, 3, 4, 8, 16, 24, r.randrange(300)])
        return _bytes(bytes(r.randrange(256) for _ in range(n)))

    def tuple_of(self, items: list) -> bytes:
        if len(items) <= 3 and self.rng.random() < 0.7:
            return b"".join(items) + [P.EMPTY_TUPLE, P.TUPLE1, P.TUPLE2, P.TUPLE3][len(items)]
        return P.MARK + b"".join(items) + P.TUPLE

    def shape(self) -> bytes:
        r = self.rng
        dims = [r.choice([0, 1, 2, 3, 4, 7, -1, 2 ** 40, 10 ** 30]) for _ in range(r.choice([0, 1, 1, 2, 3, 40]))]
        return self.tuple_of([P.LONG1 + bytes([len(b)]) + b for b in
                              (d.to_bytes((d.bit_length() + 8) // 8, "little", signed=True) for d in dims)])

    def dtype(self) -> bytes:
        r = self.rng
        spec = r.choice(TEXT) if r.random() < 0.4 else r.choice(["f4", "f8", "u1", "i8", "f2", "U5", "S3", "M8"])
        call = _global("numpy", "dtype") + self.tuple_of([_str(spec), P.NEWFALSE, P.NEWTRUE]) + P.REDUCE
        if r.random() < 0.8:
            order = _str(r.choice(["<", ">", "|", "=", "x"]))
            size = [P.BININT + struct.pack("<i", r.choice([-1, -1, 3, 8, 20, 2 ** 30])) for _ in range(2)]
            flags = P.BININT1 + bytes([r.choice([0, 0, 8, 16, 63])])
            fields = [P.NONE] * 3 if r.random() < 0.8 else [self.value(2) for _ in range(3)]
            state = [P.BININT1 + bytes([r.choice([3, 3, 4, 9])]), order, *fields, *size, flags]
            if r.random() < 0.3:
                state.append(self.tuple_of([P.NONE, self.tuple_of([_bytes(r.choice([b"s", b"ms", b"zz"])),
                                                                  P.BININT1 + b"\x01", P.BININT1 + b"\x01",
                                                                  P.BININT1 + b"\x01"])]))
            call += (self.tuple_of(state) if r.random() < 0.9 else self.value(2)) + P.BUILD
        return call

    def genuine(self) -> bytes:
        """A real array, scalar or dtype as NumPy pickles it (protocol 2, without PROTO and STOP)."""
        r = self.rng
        spec = r.choice(["<f4", ">f8", "u1", "i8", "f2", "U2", "S3", "M8[s]", "?", "c8"])
        shape = tuple(r.randrange(3) for _ in range(r.randrange(3)))
        obj = r.choice([np.zeros(shape, spec), np.zeros(shape, spec).T, np.zeros(1, spec)[0], np.dtype(spec)])
        return pickle.dumps(obj, protocol=2)[2:-1]

    def array(self) -> bytes:
        r = self.rng
        if r.random() < 0.4:
            return self.genuine()
        module = r.choice(["numpy.core.multiarray", "numpy._core.multiarray"])
        head = (_global(module, "_reconstruct") + self.tuple_of(
            [_global("numpy", "ndarray"), self.tuple_of([P.BININT1 + b"\x00"]) if r.random() < 0.9 else self.shape(),
             _bytes(b"b")]) + P.REDUCE)
        data_len = r.choice([0, 1, 4, 8, 12, 16, 24, 48, r.randrange(64)])
        data = _bytes(bytes(data_len)) if r.random() < 0.75 else \
            r.choice([P.EMPTY_LIST, P.MARK + P.NONE + P.LIST, self.value(1)])
        items = [self.shape(), self.dtype() if r.random() < 0.9 else self.value(1),
                 r.choice([P.NEWFALSE, P.NEWTRUE, P.BININT1 + b"\x01"]), data]
        if r.random() < 0.85:
            items.insert(0, P.BININT1 + bytes([r.choice([1, 1, 1, 2])]))
        return head + self.tuple_of(items) + P.BUILD

    def value(self, depth: int = 0) -> bytes:
        r = self.rng
        if depth > 3:
            return self.atom()
        kind = r.randrange(14)
        if kind < 3:
            return self.atom()
        if kind == 12:
            return self.deep()
        if kind == 13:
            return self.announced()
        if kind == 3:
            return self.array()
        if kind == 4:
            return self.dtype()
        if kind == 5:
            return _global("numpy.core.multiarray", "scalar") + self.tuple_of(
                [self.dtype(), _bytes(bytes(r.choice([0, 1, 2, 4, 8, 16])))]) + P.REDUCE
        if kind == 6:
            module, name = r.choice(GLOBALS)
            args = [self.value(depth + 1) for _ in range(r.randrange(4))]
            return _global(module, name) + self.tuple_of(args) + r.choice([P.REDUCE, P.REDUCE, P.NEWOBJ])
        if kind == 7:
            return P.EMPTY_LIST + P.MARK + b"".join(self.value(depth + 1) for _ in range(r.randrange(4))) + P.APPENDS
        if kind == 8:
            pairs = b"".join(_str(r.choice(TEXT)) + self.value(depth + 1) for _ in range(r.randrange(3)))
            return P.EMPTY_DICT + P.MARK + pairs + P.SETITEMS
        if kind == 9:
            return self.value(depth + 1) + self.value(depth + 1) + P.BUILD
        if kind == 10:
            self.memo += 1
            return self.value(depth + 1) + P.MEMOIZE
        return (P.BINGET + bytes([r.randrange(self.memo)])) if self.memo else self.atom()

    def deep(self) -> bytes:
        """A tuple, list or frozenset nested N deep (no recursion while loading), as a value,
        a key (SETITEM, SETITEMS, DICT) or a member (FROZENSET, set())."""
        r = self.rng
        n = r.choice([2, 99, 100, 101, 5000, 300_000])
        nest = r.choice([P.EMPTY_TUPLE + P.TUPLE1 * n,  # ((((),),),)
                         P.MARK * n + P.EMPTY_TUPLE + P.FROZENSET * n,  # frozenset({frozenset({...})})
                         P.MARK * n + P.EMPTY_LIST + P.LIST * n])  # [[[[]]]]
        use = r.randrange(6)
        if use == 0:
            return nest
        if use == 1:
            return P.EMPTY_DICT + nest + P.BININT1 + b"\x01" + P.SETITEM
        if use == 2:
            return P.EMPTY_DICT + P.MARK + nest + P.NONE + P.SETITEMS
        if use == 3:
            return P.MARK + nest + P.NONE + P.DICT
        if use == 4:
            return P.MARK + nest + P.FROZENSET
        return _global("builtins", r.choice(["set", "frozenset"])) + P.MARK + nest + P.LIST + P.TUPLE1 + P.REDUCE

    def announced(self) -> bytes:
        """An opcode whose length prefix announces more bytes than the file has."""
        r = self.rng
        n = r.choice([2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40, 10 ** 9, 300, 2 ** 63 - 1])
        op, width = r.choice([(P.BINBYTES8, 8), (P.BYTEARRAY8, 8), (P.BINUNICODE8, 8), (P.FRAME, 8),
                              (P.BINBYTES, 4), (P.BINUNICODE, 4), (P.LONG4, 4), (P.BINSTRING, 4)])
        n = min(n, 2 ** (8 * width - 1) - 1)
        return op + n.to_bytes(width, "little") + bytes(r.randrange(8))

    def case(self) -> bytes:
        r = self.rng
        raw = bytearray(P.PROTO + b"\x04" + self.value() + P.STOP)
        for _ in range(r.choice([0, 0, 0, 1, 2])):  # damage: flip, drop or insert a byte
            pos = r.randrange(len(raw))
            op = r.randrange(3)
            if op == 0:
                raw[pos] ^= 1 << r.randrange(8)
            elif op == 1:
                del raw[pos]
            else:
                raw.insert(pos, r.randrange(256))
        return bytes(raw)


CRASHING_PICKLES = [
    # numpy.ndarray.__setstate__((1, (4,), dtype('O'), False, [None])): segfaults numpy 2
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01K\x04\x85cnumpy\n"
    b"dtype\nX\x02\x00\x00\x00O8\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89]Natb.",
    # numpy.dtype('f4') + BUILD 'V8': SystemError
    b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87RX\x02\x00\x00\x00V8b.",
]


def _cases(seeds: range) -> str:
    """Every case must load or raise UserInputError: anything else, one line each."""
    lines = []
    for seed in seeds:
        try:
            load_pickle(Program(random.Random(seed)).case(), what=f"case {seed}", encoding="latin1")
        except UserInputError:
            pass
        except BaseException as e:  # noqa: BLE001 - exactly what the fuzzer looks for
            lines.append(f"case {seed}: {type(e).__name__}: {e}"[:300])
    return "\n".join(lines)


def _in_child(work) -> tuple[int, str]:
    """``work()`` in a forked child: ``(the signal that killed it or 0, the text it returned)``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        try:
            signal.alarm(120)
            os.write(write_fd, work().encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    return (os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0), b"".join(chunks).decode()


def _crashing_seed(seeds: range) -> int:
    """Bisect a chunk whose child died down to the case that killed it."""
    while len(seeds) > 1:
        half = seeds[:len(seeds) // 2]
        seeds = half if _in_child(lambda: _cases(half))[0] else seeds[len(seeds) // 2:]
    return seeds[0]


@pytest.mark.slow
@pytest.mark.extended  # 3 minutes of random pickles: CI's second step
def test_random_pickles_load_or_raise_one_user_error():
    total = int(os.environ.get("RDROP_PICKLE_FUZZ", "5000"))
    problems = []
    for start in range(0, total, 500):
        seeds = range(start, min(start + 500, total))
        died, report = _in_child(lambda: _cases(seeds))
        problems += report.splitlines()
        if died:
            problems.append(f"case {_crashing_seed(seeds)}: killed by signal {died}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.slow
def test_the_fuzzer_reaches_numpy():
    """Its cases build real arrays, dtypes and scalars, not only errors."""
    built = set()
    for seed in range(2000):
        try:
            out = load_pickle(Program(random.Random(seed)).case(), encoding="latin1")
        except UserInputError:
            continue
        built.add(type(out).__name__ if not isinstance(out, np.dtype) else "dtype")
    assert {"ndarray", "dtype"} <= built and len(built) >= 6, built


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_genuine_numpy_pickles_load_as_pickle_loads_them(protocol):
    """Every plain dtype, byte order, layout and scalar NumPy writes loads unchanged."""
    rng = np.random.RandomState(protocol)
    objs = {}
    for spec in ["<f4", ">f4", "<f8", ">i8", "u1", "i2", "?", "<c8", ">c16", "f2", "U3", "S4", "<M8[s]", "m8[ms]"]:
        a = (rng.randn(2, 3) * 9).astype(spec) if spec[-1] not in "]" else np.arange(6).astype(spec).reshape(2, 3)
        objs[spec] = a
        objs[spec + " fortran"] = np.asfortranarray(a)
        objs[spec + " scalar"] = a.flat[0]
        objs[spec + " empty"] = a[:0]
    objs["dtype"] = np.dtype(">f8")
    raw = pickle.dumps(objs, protocol=protocol)
    out, expected = load_pickle(raw), pickle.loads(raw)
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert type(out[key]) is type(value) and getattr(out[key], "dtype", None) == getattr(value, "dtype", None), key
        np.testing.assert_array_equal(out[key], value, err_msg=key)


def test_a_length_beyond_the_file_is_refused_before_it_is_allocated():
    """Issue 35's 12 bytes: BYTEARRAY8 announcing 4 GB. The peak resident memory of a fresh
    interpreter (``VmHWM``: getrusage's ``ru_maxrss`` survives ``exec`` and would report the test
    process's own peak) stays that of Python with NumPy: pickle's pure-Python unpickler
    zero-fills the announced 4 GB first."""
    import subprocess
    import sys

    code = ("from rdrop_paddle.io.pickles import load_pickle\nfrom rdrop_paddle.errors import "
            "UserInputError\ntry:\n    load_pickle(bytes.fromhex('800296ffffffff000000002e'))\n"
            "except UserInputError as e:\n    print(e)\n"
            "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) >> 10)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    message, peak_mb = res.stdout.strip().splitlines()
    assert res.returncode == 0 and "BYTEARRAY8 announces 4294967295 bytes where 1 are left" in message
    assert int(peak_mb) < 512, peak_mb


@pytest.mark.parametrize("use", [b"}%s\x85K\x01s.", b"(%s\x85K\x01d.", b"(%s\x85\x91."])
def test_a_million_deep_key_is_refused_before_it_is_hashed(use):
    """Issue 35: ``{((((),),)...): 1}`` built with TUPLE1 a million times; hashing it crashed."""
    raw = b"\x80\x04" + use.replace(b"%s", b")" + b"\x85" * 999_999)

    def load() -> str:
        try:
            load_pickle(raw)
            return "loaded"
        except UserInputError as e:
            return str(e)

    died, message = _in_child(load)
    assert died == 0 and "containers nested more than 100 levels deep" in message, (died, message)


@pytest.mark.parametrize("raw", CRASHING_PICKLES, ids=["object_array_short_list", "dtype_state_text"])
def test_issue_29_pickles_are_one_error(raw):
    def load() -> str:
        try:
            load_pickle(raw)
            return "loaded"
        except BaseException as e:  # noqa: BLE001
            return type(e).__name__

    assert _in_child(load) == (0, "UserInputError")


def test_eval_and_export_of_a_deep_key_pdparams_are_one_line(tmp_path):
    """The crash of issue 35 through the tools: a 1 MB ``.pdparams`` with a million-deep key."""
    from helpers import one_error_line, run_tool

    path = tmp_path / "deep.pdparams"
    path.write_bytes(b"\x80\x04}" + b")" + b"\x85" * 999_999 + b"K\x01s.")
    for tool in ("tools/eval.py", "tools/export_model.py"):
        extra = ["--out", str(tmp_path / "exp")] if "export" in tool else []
        line = one_error_line(run_tool(tool, "-c", "configs/quickstart.yaml", "-o", f"Model.pretrained={path}", *extra))
        assert str(path) in line and "containers nested more than 100 levels deep" in line, line
    assert not (tmp_path / "exp").exists()
