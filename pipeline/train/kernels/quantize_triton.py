"""Row-wise FP8 (e4m3) quantizer for CUDA in one pass: a Triton kernel, one program per row.

The FP8 bases (fp8_linear.py) and products (nf4_products.py) quantize every activation and output gradient of the frozen base GEMMs per row (token): take
the row's absmax, divide by absmax / 448, round to e4m3. torch.compile's kernel for that reads each row
twice (once for the absmax, once to scale it), and on the H200 profile of the 8B step it took 43.7 ms of
386 ms (11%). Here a program loads its whole row into registers once (14,336 columns = 16,384 fp32 lanes
over 16 warps), so each element is read once and written once. Same arithmetic as
`quantize.quantize_rows` (fp32 absmax clamped at 1e-12, IEEE division, round to nearest): the bytes match
the eager reference, checked on the GPU by tests/gpu/test_kernels.py.

    from pipeline.train.kernels import quantize_triton
    q, scale = quantize_triton.quantize_rows(x)   # x: CUDA (rows, cols) bf16/fp16/fp32 -> e4m3, fp32 (rows, 1)

Needs Triton (bundled with CUDA torch); quantize.RowQuantizer falls back to torch.compile when this cannot run.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

FP8_MAX = 448.0


@triton.jit
def _rows_kernel(x_ptr, q_ptr, s_ptr, cols, x_stride, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < cols
    x = tl.load(x_ptr + row * x_stride + offs, mask=mask, other=0.0).to(tl.float32)
    amax = tl.maximum(tl.max(tl.abs(x), axis=0), 1e-12)
    scale = tl.math.div_rn(amax, 448.0)
    q = tl.clamp(tl.math.div_rn(x, scale), -448.0, 448.0)
    tl.store(q_ptr + row * cols + offs, q.to(tl.float8e4nv), mask=mask)
    tl.store(s_ptr + row, scale)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x as e4m3, per-row float32 scale (rows x 1)) with x ~= q * scale; x is a 2-D CUDA tensor."""
    if x.dim() != 2:
        raise ValueError(f"quantize_rows takes a 2-D tensor, got shape {tuple(x.shape)}")
    if x.stride(1) != 1:
        x = x.contiguous()
    rows, cols = x.shape
    q = torch.empty((rows, cols), device=x.device, dtype=torch.float8_e4m3fn)
    s = torch.empty((rows, 1), device=x.device, dtype=torch.float32)
    if rows:
        block = triton.next_power_of_2(cols)
        _rows_kernel[(rows,)](x, q, s, cols, x.stride(0), BLOCK=block, num_warps=min(16, max(4, block // 1024)))
    return q, s
