"""What a bitsandbytes NF4 weight holds, decoded with plain torch: which calls carry one, and its block and
column absmax (the scales the FP8 copies need). Shared by the Triton decoder and the FP8 products.

bitsandbytes keeps a 4-bit weight as packed nibbles (high nibble first) with one absmax per block of 64
values; with double quantization that absmax is itself a uint8 code into `state2.code`, times one fp32
absmax per 256 blocks, plus an offset.

    from pipeline.train.kernels import nf4_decode
    nf4_decode.forward_nf4(W, quant_state)        # an NF4 weight as forward passes it (out*in/2, 1) uint8?
    nf4_decode.block_absmax(quant_state)          # fp32 absmax of every 64-value block
    nf4_decode.column_absmax(W, quant_state)      # fp32 largest |w| of every input column
"""
from __future__ import annotations

import torch


def forward_nf4(w: torch.Tensor, quant_state) -> bool:
    """Whether (w, quant_state) is a bitsandbytes NF4 weight as forward passes it (not transposed)."""
    return (quant_state is not None and getattr(quant_state, "quant_type", None) == "nf4"
            and w.dtype == torch.uint8 and w.dim() == 2 and w.shape[1] == 1)


def transposed_nf4(w: torch.Tensor, quant_state) -> bool:
    """Whether w is an NF4 weight's transpose, as Unsloth's MLP backward passes down_proj's (dY @ W)."""
    return (quant_state is not None and getattr(quant_state, "quant_type", None) == "nf4"
            and w.dtype == torch.uint8 and w.dim() == 2 and w.shape[0] == 1 and w.shape[1] > 1)


def block_absmax(state) -> torch.Tensor:
    """The absmax of every 64-value block of a bitsandbytes 4-bit weight, decoded (double quantization too)."""
    if not getattr(state, "nested", False):
        return state.absmax.float()
    s2 = state.state2
    outer = s2.absmax.float().repeat_interleave(s2.blocksize)[: state.absmax.numel()]
    return s2.code.float()[state.absmax.long()] * outer + float(state.offset)


def column_absmax(packed: torch.Tensor, state, rows_per_chunk: int = 1024) -> torch.Tensor:
    """The largest |w| of every input column of a bitsandbytes NF4 weight (out, in), decoded a chunk of rows at
    a time (a few MiB at once: it runs in the middle of training under a memory budget)."""
    rows, cols = state.shape
    blocks = block_absmax(state)
    code = state.code.float()
    flat = packed.view(-1)
    out = torch.zeros(cols, device=packed.device, dtype=torch.float32)
    for r0 in range(0, rows, rows_per_chunk):
        r1 = min(rows, r0 + rows_per_chunk)
        b = flat[r0 * cols // 2: r1 * cols // 2]
        nib = torch.stack([b >> 4, b & 15], dim=1).view(-1).long()
        v = code[nib].view(-1, state.blocksize) * blocks[r0 * cols // state.blocksize: r1 * cols // state.blocksize, None]
        out = torch.maximum(out, v.view(r1 - r0, cols).abs().amax(dim=0))
    return out
