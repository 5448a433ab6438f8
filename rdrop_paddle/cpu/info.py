"""What CPU this process runs on, read from ``/proc/cpuinfo`` (vendor, model, instruction-set
flags), and the environment that helps Paddle's CPU build on it.

``MKL_DEBUG_CPU_TYPE=5`` makes the MKL that Paddle bundles take its AVX2 code path on AMD
processors, which it would otherwise run on a slow generic path.  On Intel the variable does
harm: it pins MKL to AVX2 and so switches AVX-512 (and AMX) off — a 2-core Xeon ran the ViT-S
R-Drop step 45 % faster without it (issue 46).  So it is set on AMD only.
"""
from __future__ import annotations

import dataclasses

# the instruction sets that decide which kernels MKL and oneDNN can use
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx_vnni")


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    vendor: str  # "intel", "amd" or "other"
    model: str
    flags: tuple  # those of FLAGS the CPU has

    @property
    def bf16(self) -> bool:
        """Native bfloat16 arithmetic (AVX512-BF16 or AMX): what oneDNN's bf16 kernels need."""
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags


def parse_cpuinfo(text: str) -> CpuInfo:
    """The :class:`CpuInfo` of a ``/proc/cpuinfo`` text (its first processor)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}.get(fields.get("vendor_id", ""),
                                                                                        "other")
    have = set(fields.get("flags", "").split())
    return CpuInfo(vendor, fields.get("model name", "unknown CPU"), tuple(f for f in FLAGS if f in have))


def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    """This machine's :class:`CpuInfo` (an unknown CPU where ``/proc/cpuinfo`` cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return parse_cpuinfo(fh.read(1 << 20))
    except OSError:
        return CpuInfo("other", "unknown CPU", ())


def environment_for(info: CpuInfo) -> dict[str, str]:
    """The variables :func:`~rdrop_paddle.cpu.process.configure_environment` sets on ``info``'s CPU
    (besides ``OMP_NUM_THREADS``): the MKL code-path workaround on AMD, nothing on Intel."""
    return {"MKL_DEBUG_CPU_TYPE": "5"} if info.vendor == "amd" else {}


def amp_on_cpu(amp: str) -> str:
    """Why ``Global.amp`` is refused on CPU: Paddle's CPU build has no bf16/fp16 kernel for
    ``matmul`` in dygraph (autocast leaves every layer in fp32; ``tests/test_amp_cpu.py`` checks
    that this still holds), and, for bf16, whether this CPU could run it natively."""
    native = "" if amp != "bf16" else (
        " (this CPU has native bf16, AVX512-BF16 or AMX: Paddle Inference uses it, tools/infer.py "
        "--precision bf16)" if cpu_info().bf16 else " (nor has this CPU native bf16: no AVX512-BF16, no AMX)")
    return (f"Global.amp {amp} needs Global.device gpu: Paddle's CPU build has no {amp} matmul kernel for "
            f"training, so autocast would run everything in fp32{native}; set Global.amp: off")
