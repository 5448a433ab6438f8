"""`import rdrop_paddle` sets the CPU environment before paddle loads and keeps user values."""
import json
import os
import subprocess
import sys

from helpers import ROOT

_PROBE = (
    "import json, os, rdrop_paddle, paddle; "
    "print(json.dumps({'omp': os.environ.get('OMP_NUM_THREADS'), "
    "'mkl': os.environ.get('MKL_DEBUG_CPU_TYPE'), "
    "'stride': paddle.get_flags('FLAGS_use_stride_kernel')['FLAGS_use_stride_kernel']}))"
)


def _probe(**env) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE", "FLAGS_use_stride_kernel")}
    res = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True,
                         env={**base, **env}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_defaults_are_applied_before_paddle_loads():
    got = _probe()
    assert got == {"omp": str(len(os.sched_getaffinity(0))), "mkl": "5", "stride": False}


def test_values_the_user_exported_are_kept():
    got = _probe(OMP_NUM_THREADS="1", MKL_DEBUG_CPU_TYPE="4", FLAGS_use_stride_kernel="1")
    assert got == {"omp": "1", "mkl": "4", "stride": True}
