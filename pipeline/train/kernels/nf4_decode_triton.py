"""NF4 weight straight to FP8 (e4m3, per-row scale) in one pass on CUDA: Triton kernels for nf4_products.

The NF4 layout is in nf4_decode.py. Dequantizing to bf16 and then quantizing to FP8 moves 0.5 + 2 + 2 + 1
bytes per weight; decoding the nibble, its block scale and the row scale in one kernel moves 0.5 + 1. The
row scale (the largest |w| of a row is its largest block absmax: NF4's code spans [-1, 1]) is computed once
per weight and kept (4 bytes a row) in the `scales` dict the caller owns, since a frozen base never changes.

    from pipeline.train.kernels import nf4_decode_triton as k
    wq, scale = k.nf4_to_fp8(packed, quant_state, scales)     # (out, in) e4m3, (1, out) fp32: w ~= wq * scale^T
    wt, scale_t = k.nf4_to_fp8_t(packed, quant_state, scales) # (in, out) e4m3, (1, in): W^T for input gradients

Checked on the GPU against bitsandbytes' own dequantization (tests/gpu/test_kernels.py).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from pipeline.train.kernels import nf4_decode

# `scales`: (kind, data_ptr, rows, cols) -> (row or column scales, offset). The offset is kept as a Python
# float on purpose: it is a CUDA tensor in the quant state, and float() on it each call is a device sync
# (+40 us a call, measured).


@triton.jit
def _decode(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, i, mask, offset,
            BS: tl.constexpr, BS2: tl.constexpr, NESTED: tl.constexpr):
    """The fp32 value of flat element i of the NF4 weight (high nibble first; block absmax double-quantized)."""
    byte = tl.load(packed_ptr + i // 2, mask=mask, other=0).to(tl.int32)
    nib = tl.where(i % 2 == 0, byte >> 4, byte & 15)
    blk = i // BS
    if NESTED:
        code = tl.load(absmax_ptr + blk, mask=mask, other=0).to(tl.int32)
        am = tl.load(code2_ptr + code, mask=mask, other=0.0) * tl.load(absmax2_ptr + blk // BS2, mask=mask, other=0.0)
        am = am + offset
    else:
        am = tl.load(absmax_ptr + blk, mask=mask, other=0.0)
    return tl.load(lut_ptr + nib, mask=mask, other=0.0) * am


@triton.jit
def _nf4_fp8_kernel(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, rscale_ptr, out_ptr, n, cols, offset,
                    BLOCK: tl.constexpr, BS: tl.constexpr, BS2: tl.constexpr, NESTED: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    v = _decode(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, i, mask, offset, BS, BS2, NESTED)
    rs = tl.load(rscale_ptr + i // cols, mask=mask, other=1.0)
    q = tl.clamp(tl.math.div_rn(v, rs), -448.0, 448.0)
    tl.store(out_ptr + i, q.to(tl.float8e4nv), mask=mask)


@triton.jit
def _nf4_fp8_t_kernel(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, cscale_ptr, out_ptr, rows, cols, offset,
                      BR: tl.constexpr, BC: tl.constexpr, BS: tl.constexpr, BS2: tl.constexpr, NESTED: tl.constexpr):
    """W^T (cols, rows) in e4m3, scaled per row of W^T (a column of W): a BR x BC tile decoded, turned, stored."""
    r = tl.program_id(0) * BR + tl.arange(0, BR)
    c = tl.program_id(1) * BC + tl.arange(0, BC)
    mask = (r[:, None] < rows) & (c[None, :] < cols)
    i = r[:, None].to(tl.int64) * cols + c[None, :]
    v = _decode(packed_ptr, absmax_ptr, absmax2_ptr, code2_ptr, lut_ptr, i, mask, offset, BS, BS2, NESTED)
    cs = tl.load(cscale_ptr + c, mask=c < cols, other=1.0)
    q = tl.clamp(tl.math.div_rn(v, cs[None, :]), -448.0, 448.0).to(tl.float8e4nv)
    out = c[:, None].to(tl.int64) * rows + r[None, :]
    tl.store(out_ptr + out, tl.trans(q), mask=(c[:, None] < cols) & (r[None, :] < rows))


def _args(state):
    nested = bool(getattr(state, "nested", False))
    absmax2 = state.state2.absmax if nested else state.absmax
    code2 = state.state2.code if nested else state.code
    return nested, absmax2, code2, (state.state2.blocksize if nested else 1)


def nf4_to_fp8(packed: torch.Tensor, state, scales: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w as e4m3 (out, in), fp32 scale (1, out)) for a bitsandbytes NF4 weight in forward orientation; the row
    scales are kept in `scales` (frozen weights live as long as training: one entry each)."""
    rows, cols = state.shape
    scales = {} if scales is None else scales
    key = ("rows", packed.data_ptr(), rows, cols)
    nested, absmax2, code2, bs2 = _args(state)
    if key not in scales:
        scale = nf4_decode.block_absmax(state).view(rows, -1).amax(dim=1).clamp(min=1e-12) / 448.0
        scales[key] = (scale.float().contiguous(), float(state.offset) if nested else 0.0)
    scale, offset = scales[key]
    out = torch.empty((rows, cols), device=packed.device, dtype=torch.float8_e4m3fn)
    n = rows * cols
    block = 2048
    _nf4_fp8_kernel[(triton.cdiv(n, block),)](
        packed, state.absmax, absmax2, code2, state.code, scale, out, n, cols, offset, BLOCK=block, BS=state.blocksize,
        BS2=bs2, NESTED=nested, num_warps=8)
    return out, scale.view(1, rows)


def nf4_to_fp8_t(packed: torch.Tensor, state, scales: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W^T as e4m3 (in, out), fp32 scale (1, in)) of a forward NF4 weight W (out, in): what an input gradient's
    GEMM (dY W) takes. The column scales (largest |w| per input column) are decoded once per weight."""
    rows, cols = state.shape
    scales = {} if scales is None else scales
    key = ("columns", packed.data_ptr(), rows, cols)
    nested, absmax2, code2, bs2 = _args(state)
    if key not in scales:
        amax = nf4_decode.column_absmax(packed, state)
        scales[key] = ((amax.clamp(min=1e-12) / 448.0).float().contiguous(), float(state.offset) if nested else 0.0)
    scale, offset = scales[key]
    out = torch.empty((cols, rows), device=packed.device, dtype=torch.float8_e4m3fn)
    br, bc = 64, 64
    _nf4_fp8_t_kernel[(triton.cdiv(rows, br), triton.cdiv(cols, bc))](
        packed, state.absmax, absmax2, code2, state.code, scale, out, rows, cols, offset, BR=br, BC=bc,
        BS=state.blocksize, BS2=bs2, NESTED=nested, num_warps=4)
    return out, scale.view(1, cols)
