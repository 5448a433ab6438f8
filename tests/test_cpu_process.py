"""CPU settings: nothing happens on import; the tools' order and the library user's order
(paddle first, then ``configure()``) end with the same flags; one switch for the CPU layers."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT

_REPORT = ("import json, os, sys; print(json.dumps({'omp': os.environ.get('OMP_NUM_THREADS'), "
           "'mkl': os.environ.get('MKL_DEBUG_CPU_TYPE'), 'paddle_loaded': 'paddle' in sys.modules, "
           "'stride': (sys.modules['paddle'].get_flags('FLAGS_use_stride_kernel')['FLAGS_use_stride_kernel'] "
           "if 'paddle' in sys.modules else None)}))")
_VARS = ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE", "FLAGS_use_stride_kernel", "RDROP_CPU_KERNELS")


def _probe(code: str, **env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in _VARS}
    res = subprocess.run([sys.executable, "-c", f"{code}\n{_REPORT}"], cwd=ROOT, capture_output=True,
                         text=True, env={**base, **env}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_the_package_changes_nothing():
    got = _probe("import rdrop_paddle, rdrop_paddle.cpu")
    assert got == {"omp": None, "mkl": None, "paddle_loaded": False, "stride": None}


def _vendor_id() -> str:
    with open("/proc/cpuinfo") as fh:
        return next(line.split(":")[1].strip() for line in fh if line.startswith("vendor_id"))


def test_tools_order_sets_everything():
    """MKL's AVX2 path is forced on AMD only: on Intel it would switch AVX-512 and AMX off."""
    got = _probe("from rdrop_paddle.cpu import configure_environment, configure_device\n"
                 "configure_environment()\nimport paddle\nconfigure_device('cpu')")
    assert got == {"omp": str(len(os.sched_getaffinity(0))),
                   "mkl": "5" if _vendor_id() == "AuthenticAMD" else None, "paddle_loaded": True, "stride": False}


INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
vendor_id\t: AuthenticAMD
"""
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu avx2 fma\n"


def test_settings_follow_the_cpu():
    from rdrop_paddle.cpu.info import environment_for, parse_cpuinfo

    intel, amd = parse_cpuinfo(INTEL), parse_cpuinfo(AMD)
    assert (intel.vendor, intel.model, intel.bf16) == ("intel", "Intel(R) Xeon(R) Platinum 8480+", True)
    assert "amx_tile" in intel.flags and "avx512f" in intel.flags
    assert environment_for(intel) == {}  # nothing that disables AVX-512 or AMX
    assert (amd.vendor, amd.bf16, environment_for(amd)) == ("amd", False, {"MKL_DEBUG_CPU_TYPE": "5"})
    assert parse_cpuinfo("").vendor == "other" and environment_for(parse_cpuinfo("")) == {}


def test_paddle_imported_first_still_gets_the_runtime_flag():
    got = _probe("import paddle\nimport rdrop_paddle.cpu\nassert rdrop_paddle.cpu.configure('cpu') is False",
                 OMP_NUM_THREADS="2", MKL_DEBUG_CPU_TYPE="5")
    assert got == {"omp": "2", "mkl": "5", "paddle_loaded": True, "stride": False}


def test_values_the_user_exported_are_kept():
    got = _probe("import rdrop_paddle.cpu\nrdrop_paddle.cpu.configure('cpu')",
                 OMP_NUM_THREADS="1", MKL_DEBUG_CPU_TYPE="4", FLAGS_use_stride_kernel="1")
    assert got == {"omp": "1", "mkl": "4", "paddle_loaded": True, "stride": True}


def test_one_switch_selects_paddle_layers_with_the_same_results(tmp_path):
    code = ("import numpy as np, paddle, sys\nfrom rdrop_paddle.models import build_model\n"
            "paddle.seed(0)\nm = build_model('vit_nano_patch4_8')\nm.eval()\n"
            "x = paddle.to_tensor(np.random.RandomState(0).randn(2, 1, 8, 8).astype('float32'))\n"
            "np.save(sys.argv[1], m(x).numpy())\n"
            "print(type(m.blocks[0].mlp.fc1).__module__, type(m.blocks[0].mlp.drop).__module__)")
    outs = {}
    for flag in ("1", "0"):
        env = {k: v for k, v in os.environ.items() if k != "RDROP_CPU_KERNELS"} | {"RDROP_CPU_KERNELS": flag}
        res = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{flag}.npy")], cwd=ROOT,
                             capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        outs[flag] = res.stdout.split()
    assert outs["1"] == ["rdrop_paddle.cpu.kernels", "rdrop_paddle.cpu.dropout"]
    assert outs["0"][0].startswith("paddle.nn") and outs["0"][1].startswith("paddle.nn")
    np.testing.assert_allclose(np.load(tmp_path / "1.npy"), np.load(tmp_path / "0.npy"), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: Paddle's one thread is all there is")
def test_one_notice_when_a_model_is_built_on_an_unconfigured_cpu():
    build = ("from rdrop_paddle.models import build_model\n"
             "build_model('vit_nano_patch4_8', num_classes=10, image_size=8)\n"
             "build_model('vit_nano_patch4_8', num_classes=10, image_size=8)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PADDLE_TRAINERS_NUM")}
    plain = subprocess.run([sys.executable, "-c", "import paddle\n" + build], capture_output=True, text=True,
                           env=env, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert plain.stderr.count("notice: Paddle runs on 1 of") == 1
    configured = subprocess.run([sys.executable, "-c", "import rdrop_paddle.cpu\nrdrop_paddle.cpu.configure()\n"
                                 "import paddle\n" + build], capture_output=True, text=True, env=env, timeout=120)
    assert configured.returncode == 0 and "notice:" not in configured.stderr, configured.stderr[-2000:]
