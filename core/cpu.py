"""What this machine's CPU computes natively, for choosing a dtype (no torch needed).

    from core.cpu import bf16_native
    bf16_native()      # True on CPUs with AVX512-BF16 or AMX-BF16, False on AVX2-only ones (bf16 is emulated)

On a CPU without bf16 instructions every bf16 matrix product converts to fp32 and back: on this project's
2-core AVX2 machine SmolLM2 in bf16 took 23-30 s to prefill a new wide schema that fp32 did in 5 s
(docs/benchmarks.md, serving). The serving plan and the offline evaluation pick float32 there.
"""
from __future__ import annotations

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
