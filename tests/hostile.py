"""Hostile and damaged files in every format the package reads, built from genuine ones.

Each builder writes into a folder and returns ``{case name: (reader, path)}``; the reader
names are those of ``READERS`` in ``tests/test_fuzz_readers.py``.  Mutations are seeded,
so a failing case is reproduced by its name.
"""
import collections
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np

from helpers import ROOT, make_cifar100


def shared_list(levels=60):
    """``x = [x, x]`` ``levels`` times: 2**levels leaves in a few hundred bytes."""
    x = []
    for _ in range(levels):
        x = [x, x]
    return x


def shared_dict(levels=60):
    d = {"w": np.zeros(1, np.float32)}
    for _ in range(levels):
        d = {"a": d, "b": d}
    return d


def deep_lists(n=200_000) -> bytes:
    """A protocol-2 pickle of ``n`` lists nested in each other (no recursion to write it)."""
    return b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."


def deep_dicts(n=50_000) -> bytes:
    return b"\x80\x02" + b"}K\x00" * n + b"}" + b"s" * n + b"."


def torch_zip(path, pickle_bytes: bytes, storages: dict) -> str:
    """A ``torch.save``-style zip: ``archive/data.pkl`` and ``archive/data/<key>``."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle_bytes)
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
        zf.writestr("archive/version", "3\n")
    return str(path)


def torch_view_pickle(offset, size, stride) -> bytes:
    """data.pkl of ``{'w': tensor}`` whose view of storage ``0`` is ``(offset, size, stride)``."""
    import torch

    class Storage:
        pass

    class View:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (Storage(), offset, tuple(size), tuple(stride), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(obj, Storage) else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"w": View()})
    return buf.getvalue()


def safetensors_file(path, header: bytes, data: bytes = b"\0" * 16) -> str:
    with open(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header + data)
    return str(path)


def genuine_files(folder) -> dict:
    """One small genuine file per format, written by the library that defines it."""
    import paddle
    import safetensors.numpy
    import torch

    rng = np.random.RandomState(0)
    w = {"blocks.0.attn.qkv.weight": rng.randn(12, 4).astype(np.float32), "head.bias": np.zeros(3, np.float32)}
    files = {}
    files["npz"] = ("checkpoint", os.path.join(folder, "g.npz"))
    np.savez(files["npz"][1], **w)
    files["npz_deflate"] = ("checkpoint", os.path.join(folder, "g_deflate.npz"))
    np.savez_compressed(files["npz_deflate"][1], **w)
    files["safetensors"] = ("checkpoint", os.path.join(folder, "g.safetensors"))
    safetensors.numpy.save_file(w, files["safetensors"][1])
    files["pth"] = ("checkpoint", os.path.join(folder, "g.pth"))
    torch.save({k: torch.from_numpy(v) for k, v in w.items()}, files["pth"][1])
    files["pdparams"] = ("checkpoint", os.path.join(folder, "g.pdparams"))
    paddle.save({k: paddle.to_tensor(v) for k, v in w.items()}, files["pdparams"][1])
    files["pdopt"] = ("paddle", os.path.join(folder, "g.pdopt"))
    paddle.save({"step": 3, "progress": {"step": 3}, "opt": {"m": paddle.ones([4])}}, files["pdopt"][1])
    files["cifar"] = ("cifar", os.path.join(folder, "cifar-100-python.tar.gz"))
    make_cifar100(files["cifar"][1], n_train=4, n_test=2)
    files["yaml"] = ("config", os.path.join(folder, "g.yaml"))
    with open(os.path.join(ROOT, "configs", "quickstart.yaml"), "rb") as src, open(files["yaml"][1], "wb") as dst:
        dst.write(src.read())
    return files


def mutations(files: dict, folder, seed=0, flips=12, cuts=8) -> dict:
    """Truncations and bit flips of each genuine file."""
    rng = np.random.RandomState(seed)
    cases = {}
    for name, (reader, path) in files.items():
        raw = open(path, "rb").read()
        ext = os.path.splitext(path)[1] if not path.endswith(".tar.gz") else ".tar.gz"
        for i, n in enumerate(sorted(set(rng.randint(0, len(raw), cuts).tolist()))):
            out = os.path.join(folder, f"{name}_cut{i}{ext}")
            open(out, "wb").write(raw[:n])
            cases[f"{name} cut at {n}"] = (reader, out)
        for i in range(flips):
            pos, bit = int(rng.randint(len(raw))), int(rng.randint(8))
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            out = os.path.join(folder, f"{name}_flip{i}{ext}")
            open(out, "wb").write(bytes(flipped))
            cases[f"{name} bit {bit} of byte {pos} flipped"] = (reader, out)
    return cases


def crafted_files(folder) -> dict:
    """The structures of issue 20: shared references, deep nesting, views past storage,
    malformed safetensors headers, links in a tar, a .npy named .npz, deep YAML."""
    p = lambda name: os.path.join(folder, name)  # noqa: E731
    cases = {}

    def write(name, raw, reader):
        open(p(name), "wb").write(raw)
        cases[name] = (reader, p(name))

    write("shared_list.pdparams", pickle.dumps({"w": shared_list()}, protocol=2), "checkpoint")
    write("shared_list_paddle.pdparams", pickle.dumps({"w": shared_list()}, protocol=2), "paddle")
    write("shared_dict.pdparams", pickle.dumps(shared_dict(), protocol=2), "checkpoint")
    write("deep_lists.pdparams", deep_lists(), "paddle")
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = shared_list(), "x"
    write("object_array.pdparams", pickle.dumps({"w": objects}, protocol=2), "checkpoint")
    np.savez(p("text_array.npz"), w=np.array(["one", "two"]))
    cases["text_array.npz"] = ("checkpoint", p("text_array.npz"))
    write("deep_dicts.pdparams", deep_dicts(), "checkpoint")
    write("call_ndarray.pdparams", b"\x80\x02cnumpy\nndarray\n(K\x64K\x64t\x85R.", "paddle")
    write("bytearray_size.pdparams", b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x7f\x85R.", "paddle")
    for name, raw in (("shared_list", pickle.dumps({"w": shared_list()}, protocol=2)),
                      ("shared_dict", pickle.dumps(shared_dict(), protocol=2)),
                      ("deep_lists", deep_lists()), ("deep_dicts", deep_dicts())):
        cases[f"{name}.pth"] = ("checkpoint", torch_zip(p(f"{name}.pth"), raw, {}))
    storage = np.arange(4, dtype=np.float32).tobytes()
    for name, view in (("past_end", (2, [4], [1])), ("huge_broadcast", (0, [10 ** 6, 10 ** 6], [0, 0])),
                       ("offset_outside", (10 ** 9, [1], [1])), ("rank_mismatch", (0, [2, 2], [1]))):
        cases[f"view_{name}.pth"] = ("checkpoint", torch_zip(p(f"view_{name}.pth"),
                                                             torch_view_pickle(*view), {"0": storage}))
    cases["deflate_bomb.pth"] = ("checkpoint", p("deflate_bomb.pth"))
    with zipfile.ZipFile(p("deflate_bomb.pth"), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", torch_view_pickle(0, [4], [1]))
        zf.writestr("archive/data/0", b"\0" * (300 << 20))
    for name, header in (("deep", b"[" * 200_000 + b"]" * 200_000), ("list", b"[1, 2]"), ("int", b"5"),
                         ("overlap", b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},'
                                     b' "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}'),
                         ("negative", b'{"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}'),
                         ("size_mismatch", b'{"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 16]}}'),
                         ("long_length", None)):
        path = p(f"st_{name}.safetensors")
        if header is None:
            open(path, "wb").write((10 ** 15).to_bytes(8, "little") + b"{}")
        else:
            safetensors_file(path, header)
        cases[f"st_{name}.safetensors"] = ("checkpoint", path)
    for name, method in (("bzip2", zipfile.ZIP_BZIP2), ("lzma", zipfile.ZIP_LZMA)):  # inflated whole by zipfile
        with zipfile.ZipFile(p(f"{name}_bomb.pth"), "w", method) as zf:
            zf.writestr("archive/data.pkl", torch_view_pickle(0, [4], [1]))
            zf.writestr("archive/data/0", b"\0" * (64 << 20))
        cases[f"{name}_bomb.pth"] = ("checkpoint", p(f"{name}_bomb.pth"))
    with open(p("st_sparse_huge_length.safetensors"), "wb") as fh:  # 1 GiB, sparse: the header is read first
        fh.write((1 << 63).to_bytes(8, "little"))
        fh.truncate(1 << 30)
    cases["st_sparse_huge_length.safetensors"] = ("checkpoint", p("st_sparse_huge_length.safetensors"))
    safetensors_file(p("st_offsets_past_end.safetensors"),
                     b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', b"\0" * 8)
    cases["st_offsets_past_end.safetensors"] = ("checkpoint", p("st_offsets_past_end.safetensors"))
    np.save(p("array.npy"), np.ones(3))
    os.replace(p("array.npy"), p("array_renamed.npz"))
    cases["array_renamed.npz"] = ("checkpoint", p("array_renamed.npz"))
    with tarfile.open(p("links.tar.gz"), "w:gz") as tar:
        for a, b in (("train", "test"), ("test", "train")):
            info = tarfile.TarInfo(f"cifar-100-python/{a}")
            info.type, info.linkname = tarfile.SYMTYPE, b
            tar.addfile(info)
    cases["links.tar.gz"] = ("cifar", p("links.tar.gz"))
    cifar_shared = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": shared_list()}
    with tarfile.open(p("shared_labels.tar.gz"), "w:gz") as tar:
        raw = pickle.dumps(cifar_shared, protocol=2)
        info = tarfile.TarInfo("cifar-100-python/train")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    cases["shared_labels.tar.gz"] = ("cifar", p("shared_labels.tar.gz"))
    write("deep.yaml", b"Global:\n  output_dir: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "config")
    laughs = b"[&a [x, x, x, x, x, x, x, x, x]"
    for prev, name in zip(b"abcdefg", b"bcdefgh"):
        laughs += b", &%c [%s]" % (name, b", ".join([b"*%c" % prev] * 9))
    write("laughs.yaml", b"Global:\n  output_dir: " + laughs + b"]\n", "config")
    cases["proc_self_mem.yaml"] = ("config", "/proc/self/mem")
    return cases
