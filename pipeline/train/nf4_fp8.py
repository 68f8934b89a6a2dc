"""QLoRA on FP8 tensor cores: NF4 weights, frozen GEMMs in FP8 (the Unsloth backend, `train.precision: 4bit`).

QLoRA keeps the frozen base in NF4 (4 bits a weight) and, for every product, dequantizes a projection to
bf16 and runs a bf16 GEMM; under a tight memory budget it also recomputes each layer's forward in backward.
So two of its three base GEMMs per projection are forward products. On a GPU with FP8 tensor cores
(compute capability 8.9+), this module makes those two FP8: the projection is decoded from NF4 straight
to e4m3 with a scale per output row (nf4_kernel, one pass; dequantize + fp8_rows where it cannot run),
the input per token (once for q/k/v and once for gate/up, as in fp8_base); then `torch._scaled_mm`. The
weights stay NF4 in memory (the FP8 copy lives for one product), so the memory plan is unchanged. The
other input-gradient GEMMs of backward sit inside Unsloth's fused Functions; with FP8_BLOCKS (the default)
nf4_blocks takes those blocks over and runs them in FP8 too (W^T decoded by nf4_kernel.nf4_to_fp8_t).
Everything LoRA stays bf16.

It replaces `matmul_lora` in Unsloth's fused LoRA layers (`unsloth.kernels.fast_lora`) for NF4 weights
(bitsandbytes' packed uint8) without an `out` buffer: in forward orientation ((n, 1): X W^T, the weight
decoded straight to FP8 by nf4_kernel) and transposed ((1, n): down_proj's input gradient in Unsloth's MLP
backward, the one backward product that goes through matmul_lora); every other call (16-bit or FP8
weights, Unsloth's own FP8) goes to the original.

    from pipeline.train import nf4_fp8
    nf4_fp8.patch_unsloth()      # after `import unsloth`; pipeline/train/unsloth_backend.py does it when the plan says
    nf4_fp8.patch_unsloth(blocks=False)  # only matmul_lora (the default also routes the blocks, nf4_blocks.py)
"""
from __future__ import annotations

import torch

from pipeline.train import fp8_base

calls = 0   # products that took the FP8 path (tests and the bench read it)


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


_kernels: dict[str, object] = {}   # nf4_kernel function name -> the function, or False once it could not run
TRANSPOSE_KERNEL = True   # nf4_kernel.nf4_to_fp8_t for input gradients (H200: 1.14-2.71x vs dequantize + transpose + quantize)


def _kernel(name: str, W, W_quant, what: str):
    """nf4_kernel.<name>(W, W_quant) on CUDA, or None where it cannot run (said once; the caller falls back)."""
    fn = _kernels.get(name)
    if not W.is_cuda or fn is False:
        return None
    try:
        if fn is None:
            from pipeline.train import nf4_kernel  # heavy: triton
            fn = _kernels[name] = getattr(nf4_kernel, name)
        return fn(W, W_quant)
    except Exception as e:  # noqa: BLE001 - the step-by-step path is correct, only slower
        print(f"[train] 4bit: the {what} kernel cannot run ({type(e).__name__}: {str(e)[:200]}); step by step "
              "instead", flush=True)
        _kernels[name] = False
        return None


def _weight_fp8(W, W_quant, dequantize, use_global_buffer, dtype):
    """(e4m3 (out, in), scale (1, out)) of a forward NF4 weight: the one-pass kernel on CUDA, else dequantize
    to 16 bits and quantize the rows."""
    got = _kernel("nf4_to_fp8", W, W_quant, "NF4 -> FP8")
    if got is not None:
        return got
    wq, sw = fp8_base._quantize(dequantize(W, W_quant, use_global_buffer=use_global_buffer, dtype=dtype))
    return wq, sw.t().contiguous()


def forward_product(x2: torch.Tensor, W, W_quant, dequantize, use_global_buffer: bool = True) -> torch.Tensor:
    """x2 W^T in FP8 for a forward NF4 weight W (out, in): the weight per output row, the input per token (once
    for inputs several projections read: q/k/v, gate/up)."""
    wq, sw = _weight_fp8(W, W_quant, dequantize, use_global_buffer, x2.dtype)
    xq, sx = fp8_base.quantize_input(x2)
    return torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw, out_dtype=x2.dtype)


def _weight_t_fp8(W, W_quant, dequantize, dtype):
    """(W^T as e4m3 (in, out), scale (1, in)) of a forward NF4 weight: dequantize, transpose and quantize the
    rows; or the one-pass transposing kernel with TRANSPOSE_KERNEL."""
    got = _kernel("nf4_to_fp8_t", W, W_quant, "transposing NF4 -> FP8") if TRANSPOSE_KERNEL else None
    if got is not None:
        return got
    wq, sw = fp8_base._quantize(dequantize(W, W_quant, use_global_buffer=True, dtype=dtype).t().contiguous())
    return wq, sw.t().contiguous()


def input_grad_product(g2: torch.Tensor, W, W_quant, dequantize) -> torch.Tensor:
    """g2 W in FP8 for a forward NF4 weight W (out, in), i.e. an input gradient: the GEMM wants W^T row-major,
    scaled per row of W^T (per input column of W), and the gradient per token."""
    wq, sw = _weight_t_fp8(W, W_quant, dequantize, g2.dtype)
    gq, sg = fp8_base._quantize(g2.contiguous())
    return torch._scaled_mm(gq, wq.t(), scale_a=sg, scale_b=sw, out_dtype=g2.dtype)


def make_matmul_lora(original, dequantize):
    """Unsloth's `matmul_lora(X, W, W_quant, A, B, s)` = X W^T + s (X A^T) B^T, with the base product in FP8
    for NF4 weights; `dequantize(W, W_quant, use_global_buffer=, dtype=)` gives W in 16 bits."""

    def matmul_lora(X, W, W_quant, A, B, s, out=None, use_global_buffer=True):
        forward = forward_nf4(W, W_quant)
        if out is not None or not (forward or transposed_nf4(W, W_quant)):
            return original(X, W, W_quant, A, B, s, out=out, use_global_buffer=use_global_buffer)
        global calls
        calls += 1
        shape = X.shape
        x2 = X.reshape(-1, shape[-1])
        if forward:     # X W^T
            y = forward_product(x2, W, W_quant, dequantize, use_global_buffer)
        else:           # X (W^T)^T = dY W, W^T as Unsloth's MLP backward passes it
            y = input_grad_product(x2, W.t(), W_quant, dequantize)
        if A is not None:
            y.addmm_(x2 @ A.to(X.dtype).t(), B.to(X.dtype).t(), alpha=s)
        return y.view(*shape[:-1], -1)

    matmul_lora.original = original
    return matmul_lora


FP8_BLOCKS = True   # nf4_blocks for Unsloth's fused blocks, backward in FP8 too (H200 8B QLoRA 13.2k vs 12.6k tok/s without)


def patch_unsloth(blocks: bool | None = None) -> bool:
    """Route Unsloth's fused LoRA layers through the FP8 products (idempotent); with `blocks` (default
    FP8_BLOCKS) its plain NF4 MLP / q,k,v / o blocks through nf4_blocks, backward included. False if Unsloth
    lacks the hooks."""
    from unsloth.kernels import fast_lora, utils

    current = getattr(fast_lora, "matmul_lora", None)
    if current is None or not hasattr(utils, "fast_dequantize"):
        return False
    if getattr(current, "original", None) is None:
        fast_lora.matmul_lora = make_matmul_lora(current, utils.fast_dequantize)
    if (FP8_BLOCKS if blocks is None else blocks) and hasattr(fast_lora, "_apply"):
        from pipeline.train import nf4_blocks  # heavy: not at load time (nf4_blocks imports this module: a cycle)

        if getattr(fast_lora._apply, "original", None) is None:
            functions = {k: getattr(fast_lora, n) for k, n in (("mlp", "LoRA_MLP"), ("qkv", "LoRA_QKV"),
                                                                ("w", "LoRA_W")) if hasattr(fast_lora, n)}
            fast_lora._apply = nf4_blocks.make_apply(fast_lora._apply, functions, utils.fast_dequantize)
    return True


