"""NF4 weight straight to FP8 (e4m3, per-row scale) in one pass on CUDA: a Triton kernel for nf4_fp8.

bitsandbytes keeps a 4-bit weight as packed nibbles (high nibble first) with one absmax per block of 64
values; with double quantization that absmax is itself a uint8 code into `state2.code`, times one fp32
absmax per 256 blocks, plus an offset. Dequantizing to bf16 and then quantizing to FP8 moves 0.5 + 2 + 2 + 1
bytes per weight; decoding the nibble, its block scale and the row scale in one kernel moves 0.5 + 1. The
row scale (the largest |w| of a row is its largest block absmax: NF4's code spans [-1, 1]) is computed once
per weight and kept (4 bytes a row), since a frozen base never changes.

    from pipeline.train import nf4_kernel
    wq, scale = nf4_kernel.nf4_to_fp8(packed, quant_state)   # (out, in) e4m3, (1, out) fp32: w ~= wq * scale^T

Checked on the device against bitsandbytes' own dequantization (`bench/train_gpu.py nf4-check`).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from pipeline.train import nf4_fp8

_row_scales: dict[tuple, tuple[torch.Tensor, float]] = {}   # (data_ptr, rows, cols) -> (row scales, offset)


@triton.jit
def _nf4_fp8_kernel(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, rscale_ptr, out_ptr, n, cols, offset,
                    BLOCK: tl.constexpr, BS: tl.constexpr, BS2: tl.constexpr, NESTED: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    byte = tl.load(packed_ptr + i // 2, mask=mask, other=0).to(tl.int32)
    nib = tl.where(i % 2 == 0, byte >> 4, byte & 15)
    blk = i // BS
    if NESTED:
        code = tl.load(absmax_ptr + blk, mask=mask, other=0).to(tl.int32)
        am = tl.load(code2_ptr + code, mask=mask, other=0.0) * tl.load(absmax2_ptr + blk // BS2, mask=mask, other=0.0)
        am = am + offset
    else:
        am = tl.load(absmax_ptr + blk, mask=mask, other=0.0)
    v = tl.load(lut_ptr + nib, mask=mask, other=0.0) * am
    rs = tl.load(rscale_ptr + i // cols, mask=mask, other=1.0)
    q = tl.clamp(tl.math.div_rn(v, rs), -448.0, 448.0)
    tl.store(out_ptr + i, q.to(tl.float8e4nv), mask=mask)


def nf4_to_fp8(packed: torch.Tensor, state) -> tuple[torch.Tensor, torch.Tensor]:
    """(w as e4m3 (out, in), fp32 scale (1, out)) for a bitsandbytes NF4 weight in forward orientation."""
    rows, cols = state.shape
    key = (packed.data_ptr(), rows, cols)   # frozen weights live as long as training: one entry each
    nested = bool(getattr(state, "nested", False))
    if key not in _row_scales:
        scale = nf4_fp8.block_absmax(state).view(rows, -1).amax(dim=1).clamp(min=1e-12) / 448.0
        _row_scales[key] = (scale.float().contiguous(), float(state.offset) if nested else 0.0)
    scale, offset = _row_scales[key]
    out = torch.empty((rows, cols), device=packed.device, dtype=torch.float8_e4m3fn)
    n = rows * cols
    absmax2 = state.state2.absmax if nested else state.absmax
    code2 = state.state2.code if nested else state.code
    block = 2048
    _nf4_fp8_kernel[(triton.cdiv(n, block),)](
        packed, state.absmax, absmax2, code2, state.code, scale, out, n, cols, offset, BLOCK=block, BS=state.blocksize,
        BS2=state.state2.blocksize if nested else 1, NESTED=nested, num_warps=8)
    return out, scale.view(1, rows)
