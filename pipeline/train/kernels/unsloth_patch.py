"""The one place that reaches into Unsloth: its fused LoRA layers' frozen NF4 GEMMs routed to FP8 products.

Unsloth's fused LoRA layers (`unsloth.kernels.fast_lora`) call `matmul_lora(X, W, W_quant, A, B, s)` for
their forward products (and for down_proj's input gradient in the MLP's backward) and run their MLP / q,k,v
/ o blocks through `_apply(Function, *args)`. `patch` replaces those two module functions with ours:
- `matmul_lora`: for NF4 weights (bitsandbytes' packed uint8) without an `out` buffer, in forward
  orientation ((n, 1): X W^T) and transposed ((1, n): dY W), the base product in FP8 (nf4_products); every
  other call (16-bit or FP8 weights, Unsloth's own FP8) goes to the original;
- `_apply` (with `qlora_fp8_blocks`): the plain NF4 blocks as our Functions (nf4_blocks.py), so the input
  gradients inside them run in FP8 too; any other block goes to the original.
Unsloth's functions are process-wide, so the patch is too: a second `patch` with other options replaces
ours (it never wraps ours), and each patched function keeps `.original` and `.options`; a model loaded earlier
in the process then runs through the newest patch. An `apply` without qlora_fp8 does not undo a patch (one
training per process, as the train command runs).

    from pipeline.train import kernels
    kernels.apply(model, plan.kernels)        # calls patch(options, counters) when options.qlora_fp8
"""
from __future__ import annotations

from pipeline.train.kernels import nf4_blocks
from pipeline.train.kernels.nf4_decode import forward_nf4, transposed_nf4
from pipeline.train.kernels.nf4_products import Nf4Products


def make_matmul_lora(original, products: Nf4Products):
    """Unsloth's `matmul_lora(X, W, W_quant, A, B, s)` = X W^T + s (X A^T) B^T, with the base product in FP8
    for NF4 weights (products: an Nf4Products with Unsloth's dequantizer)."""

    def matmul_lora(X, W, W_quant, A, B, s, out=None, use_global_buffer=True):
        forward = forward_nf4(W, W_quant)
        if out is not None or not (forward or transposed_nf4(W, W_quant)):
            return original(X, W, W_quant, A, B, s, out=out, use_global_buffer=use_global_buffer)
        products.count()
        shape = X.shape
        x2 = X.reshape(-1, shape[-1])
        if forward:     # X W^T
            y = products.forward(x2, W, W_quant, use_global_buffer)
        else:           # X (W^T)^T = dY W, W^T as Unsloth's MLP backward passes it
            y = products.input_grad(x2, W.t(), W_quant)
        if A is not None:
            y.addmm_(x2 @ A.to(X.dtype).t(), B.to(X.dtype).t(), alpha=s)
        return y.view(*shape[:-1], -1)

    matmul_lora.original = original
    return matmul_lora


def patch(options, counters=None) -> Nf4Products | None:
    """Route Unsloth's fused LoRA layers through the FP8 products; with `options.qlora_fp8_blocks` its plain
    NF4 MLP / q,k,v / o blocks through nf4_blocks, backward included. Returns the products (their caches and
    held input), or None if Unsloth lacks the hooks."""
    from unsloth.kernels import fast_lora, utils

    current = getattr(fast_lora, "matmul_lora", None)
    if current is None or not hasattr(utils, "fast_dequantize"):
        return None
    products = Nf4Products(utils.fast_dequantize, options, counters)
    original = getattr(current, "original", None) or current
    fast_lora.matmul_lora = make_matmul_lora(original, products)
    fast_lora.matmul_lora.options = options
    apply_original = getattr(fast_lora, "_apply", None)
    apply_original = getattr(apply_original, "original", None) or apply_original
    if apply_original is not None:
        if options.qlora_fp8_blocks:
            functions = {k: getattr(fast_lora, n) for k, n in (("mlp", "LoRA_MLP"), ("qkv", "LoRA_QKV"),
                                                                ("w", "LoRA_W")) if hasattr(fast_lora, n)}
            fast_lora._apply = nf4_blocks.make_apply(apply_original, functions, products)
            fast_lora._apply.options = options
        else:
            fast_lora._apply = apply_original
    return products
