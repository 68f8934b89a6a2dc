"""What this machine's CPU computes natively, for choosing a dtype (no torch needed), and how fast it multiplies FP8.

    from core.cpu import bf16_native, fp8_gemm_ms
    bf16_native()      # True on CPUs with AVX512-BF16 or AMX-BF16, False on AVX2-only ones (bf16 is emulated)
    fp8_gemm_ms(py)    # ms for one FP8 product the way vLLM CPU computes it, measured with interpreter `py`

On a CPU without bf16 instructions every bf16 matrix product converts to fp32 and back: on this project's
2-core AVX2 machine SmolLM2 in bf16 took 23-30 s to prefill a new wide schema that fp32 did in 5 s
(docs/benchmarks.md, serving). The serving plan and the offline evaluation pick float32 there.
"""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def bf16_native(cpuinfo: str = "/proc/cpuinfo") -> bool:
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return True  # unknown (not Linux): keep the model's own dtype
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags |= set(line.split(":", 1)[-1].split())
    return any(f in flags for f in BF16_FLAGS)


# vLLM CPU runs an FP8 checkpoint's layers (ChannelWiseTorchFP8ScaledMMLinearKernel) as torch._scaled_mm with
# per-tensor unit scales into fp32, then applies the real scales. How fast torch does that depends on the CPU: on
# this project's AVX512/AMX machine (torch 2.13) it took 811 ms for a 16 x 576 x 1536 product that fp32 does in
# 1.4 ms (row-wise scales: 10 ms), i.e. ~1 token a minute for SmolLM2; an AVX2 machine served the same export.
FP8_PROBE = """
import time, torch
torch.set_num_threads(1)
a = torch.randn(16, 576).to(torch.float8_e4m3fn)
b = torch.randn(1536, 576).to(torch.float8_e4m3fn).t()
one = torch.ones(1)
torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.float32)
t = time.perf_counter()
torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.float32)
print(1e3 * (time.perf_counter() - t))
"""


@lru_cache(maxsize=4)
def fp8_gemm_ms(python: str, timeout_s: float = 60.0) -> float | None:
    """ms for one 16 x 576 x 1536 FP8 product as vLLM CPU computes it, in interpreter `python` (the serving one);
    None if it cannot be measured there (no torch, no float8, ...)."""
    try:
        out = subprocess.run([python, "-c", FP8_PROBE], capture_output=True, text=True, timeout=timeout_s)
        return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except subprocess.TimeoutExpired:
        return 1e3 * timeout_s
    except (OSError, ValueError, IndexError):
        return None
