"""Every reader of the package, given damaged and hostile files, answers with one clear error
within a bounded time and memory: no hang, crash, traceback or read past the file.

The files are genuine ones (written by NumPy, safetensors, torch, Paddle, tarfile) cut and
bit-flipped, plus the crafted structures of ``tests/hostile.py``.  The readers run in a
child process that reports, per file, what happened, how long it took and how much its
peak memory grew (Linux ``clear_refs``); the parent bounds the whole child in time.
"""
import json
import subprocess
import sys

import pytest

from helpers import ROOT, one_error_line, run_tool
from hostile import crafted_files, genuine_files, mutations, shared_list

_CHILD = r"""
import json, sys, time
from rdrop_paddle.cpu import configure_environment
configure_environment()
from rdrop_paddle.config import load_config
from rdrop_paddle.convert.readers import load_checkpoint
from rdrop_paddle.data.cifar100 import class_names, read_split
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_paddle

READERS = {"checkpoint": load_checkpoint, "paddle": load_paddle, "config": load_config,
           "cifar": lambda p: (read_split(p, "train"), class_names(p))}


def status_mb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith(field))


def reset_peak():  # Linux: VmHWM restarts from the current RSS
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


results = {}
for name, (reader, path) in json.load(open(sys.argv[1])).items():
    before, measured = status_mb("VmRSS"), reset_peak()
    start = time.perf_counter()
    try:
        READERS[reader](path)
        outcome = "ok"
    except UserInputError as e:
        outcome = "error: " + str(e)
    except BaseException as e:
        outcome = f"crash: {type(e).__name__}: {str(e)[:300]}"
    results[name] = {"outcome": outcome, "seconds": time.perf_counter() - start,
                     "added_mb": status_mb("VmHWM") - before if measured else None}
print(json.dumps({"results": results}))
"""


def _read_all(tmp_path, cases: dict) -> dict:
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    res = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "cases.json")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_genuine_files_read(tmp_path):
    out = _read_all(tmp_path, genuine_files(str(tmp_path)))
    assert all(r["outcome"] == "ok" for r in out["results"].values()), out["results"]


def test_damaged_and_hostile_files_are_one_error_each_within_bounds(tmp_path):
    files = genuine_files(str(tmp_path))
    crafted = crafted_files(str(tmp_path))
    cases = {**mutations(files, str(tmp_path)), **crafted}
    out = _read_all(tmp_path, cases)
    results = out["results"]
    assert len(results) == len(cases) > 150
    crashed = {k: r["outcome"] for k, r in results.items() if r["outcome"].startswith("crash")}
    assert not crashed, crashed
    for name, r in results.items():
        assert r["seconds"] < 10, (name, r)
        if r["outcome"].startswith("error"):
            assert "\n" not in r["outcome"] and len(r["outcome"]) < 600, (name, r)
    # every crafted structure is refused, except a list shared 60 levels deep: a legal value that
    # the readers walk once (in bounded time, asserted above); the tools refuse it where they use it
    accepted = [k for k in crafted if results[k]["outcome"] == "ok" and not k.startswith("shared_list")]
    assert not accepted, accepted
    for name in results:  # a truncated binary file never reads as a good one (YAML text may)
        if " cut at " in name and not name.startswith("yaml"):
            assert results[name]["outcome"].startswith("error"), (name, results[name])
    added = {k: r["added_mb"] for k, r in results.items() if r["added_mb"] is not None}
    assert len(added) in (0, len(results))  # the peak is measured for every file, or nowhere
    assert all(mb < 500 for mb in added.values()), max(added.items(), key=lambda kv: kv[1])


def test_specific_refusals_name_the_problem(tmp_path):
    out = _read_all(tmp_path, crafted_files(str(tmp_path)))["results"]
    expect = {
        "shared_dict.pdparams": "shared references",
        "deep_lists.pdparams": "nested more than 100 levels",
        "object_array.pdparams": "refusing NumPy dtype object: no arrays of Python objects",
        "text_array.npz": "arrays that are not numbers: w (<U3)",
        "deep_dicts.pth": "nested more than 100 levels",
        "view_past_end.pth": "reaches past its storage of 4 elements",
        "view_huge_broadcast.pth": "reaches past its storage",
        "deflate_bomb.pth": "claim 314,572,",
        "st_deep.safetensors": "RecursionError",
        "st_list.safetensors": "the header is a JSON list",
        "st_overlap.safetensors": "the data of a and b overlap",
        "st_negative.safetensors": "shape must be up to 32 integers in [0, 2**48), got [-1, 4]",
        "st_size_mismatch.safetensors": "16 bytes for shape [1000]",
        "array_renamed.npz": "not an .npz archive",
        "links.tar.gz": "is not a regular file",
        "shared_labels.tar.gz": "fine_labels is not a list of integers",
        "deep.yaml": "nested too deeply",
        "proc_self_mem.yaml": "cannot read config file /proc/self/mem",
        "call_ndarray.pdparams": "not a readable file",
        "bytearray_size.pdparams": "bytearray only of bytes, or of text",
    }
    for name, text in expect.items():
        assert text in out[name]["outcome"], (name, out[name]["outcome"])


def test_the_shared_reference_pickle_is_one_line_at_every_entry_point(tmp_path):
    import pickle

    evil = tmp_path / "shared.pdparams"
    evil.write_bytes(pickle.dumps({"head.weight": shared_list()}, protocol=2))
    assert len(evil.read_bytes()) < 600
    res = run_tool("tools/convert_weights.py", "--src", evil, "--num-classes", "10", "--out", tmp_path / "o.pdparams",
                   timeout=60)
    one_error_line(res)
    for tool in ("tools/train.py", "tools/eval.py"):
        res = run_tool(tool, "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={tmp_path / 'run'}",
                       "-o", f"Model.pretrained={evil}", timeout=60)
        assert "shared.pdparams does not fit the model" in one_error_line(res)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", ["Global:\n  max_steps: [1\n", "Global: {a: 1\n"])
def test_yaml_and_argument_errors_are_one_line(tmp_path, text):
    (tmp_path / "bad.yaml").write_text(text)
    assert "not valid YAML" in one_error_line(run_tool("tools/train.py", "-c", tmp_path / "bad.yaml"))
    assert "expected one argument" in one_error_line(run_tool("tools/train.py", "-c"))
    assert "invalid int value" in one_error_line(run_tool("tools/convert_weights.py", "--src", "x",
                                                          "--num-classes", "ten", "--out", "y"))
