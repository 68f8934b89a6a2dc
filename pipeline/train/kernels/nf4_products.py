"""QLoRA on FP8 tensor cores: NF4 weights, frozen GEMMs in FP8 (the Unsloth backend, `train.precision: 4bit`).

QLoRA keeps the frozen base in NF4 (4 bits a weight) and, for every product, dequantizes a projection to
bf16 and runs a bf16 GEMM; under a tight memory budget it also recomputes each layer's forward in backward.
So two of its three base GEMMs per projection are forward products. On a GPU with FP8 tensor cores
(compute capability 8.9+), `Nf4Products` makes them FP8: the projection is decoded from NF4 straight to
e4m3 with a scale per output row (nf4_decode_triton, one pass; dequantize + the row quantizer where it
cannot run), the input per token (once for q/k/v and once for gate/up, quantize.SharedInput); then
`torch._scaled_mm`. The weights stay NF4 in memory (the FP8 copy lives for one product), so the memory plan
is unchanged. Input gradients take W^T decoded straight to FP8 too (`nf4_transpose_kernel`; H200: 1.14-2.71x
vs dequantize + transpose + quantize). Everything LoRA stays bf16. Where the products are used: Unsloth's
`matmul_lora` and its fused blocks (unsloth_patch.py, nf4_blocks.py).

    from pipeline.train.kernels.nf4_products import Nf4Products
    products = Nf4Products(dequantize, options, counters)   # dequantize(W, W_quant, use_global_buffer=, dtype=)
    y = products.forward(x2, W, W_quant)                    # x2 W^T for a forward NF4 weight W (out, in)
    dx = products.input_grad(g2, W, W_quant)                # g2 W (an input gradient)
"""
from __future__ import annotations

import torch

from pipeline.train.kernels.quantize import RowQuantizer, SharedInput


class Nf4Products:
    """The FP8 products of one patched model: its dequantizer, row quantizer, shared-input cache, the decoded
    scales of its frozen weights, and which Triton decoders could run here."""

    def __init__(self, dequantize, options=None, counters=None):
        self.dequantize = dequantize
        self.counters = counters
        self.transpose_kernel = True if options is None else options.nf4_transpose_kernel
        self.quantize = RowQuantizer(triton=True if options is None else options.triton_quantizer)
        self.quantize_input = SharedInput(self.quantize, True if options is None else options.share_quantized_input,
                                          counters)
        self.scales: dict = {}                     # the frozen weights' FP8 scales (nf4_decode_triton)
        self._kernels: dict[str, object] = {}      # decoder name -> function, or False once it could not run

    def forget_last_input(self) -> None:
        self.quantize_input.forget()

    def count(self, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.fp8_products += n

    def _kernel(self, name: str, W, W_quant, what: str):
        """nf4_decode_triton.<name>(W, W_quant) on CUDA, or None where it cannot run (said once; the caller
        falls back)."""
        fn = self._kernels.get(name)
        if not W.is_cuda or fn is False:
            return None
        try:
            if fn is None:
                from pipeline.train.kernels import nf4_decode_triton  # heavy: triton

                fn = self._kernels[name] = getattr(nf4_decode_triton, name)
            return fn(W, W_quant, self.scales)
        except Exception as e:  # noqa: BLE001 - the step-by-step path is correct, only slower
            print(f"[train] 4bit: the {what} kernel cannot run ({type(e).__name__}: {str(e)[:200]}); step by step "
                  "instead", flush=True)
            self._kernels[name] = False
            return None

    def weight_fp8(self, W, W_quant, use_global_buffer: bool, dtype):
        """(e4m3 (out, in), scale (1, out)) of a forward NF4 weight: the one-pass kernel on CUDA, else
        dequantize to 16 bits and quantize the rows."""
        got = self._kernel("nf4_to_fp8", W, W_quant, "NF4 -> FP8")
        if got is not None:
            return got
        wq, sw = self.quantize(self.dequantize(W, W_quant, use_global_buffer=use_global_buffer, dtype=dtype))
        return wq, sw.t().contiguous()

    def weight_t_fp8(self, W, W_quant, dtype):
        """(W^T as e4m3 (in, out), scale (1, in)) of a forward NF4 weight: the one-pass transposing kernel, or
        dequantize, transpose and quantize the rows."""
        got = (self._kernel("nf4_to_fp8_t", W, W_quant, "transposing NF4 -> FP8") if self.transpose_kernel
               else None)
        if got is not None:
            return got
        wq, sw = self.quantize(self.dequantize(W, W_quant, use_global_buffer=True, dtype=dtype).t().contiguous())
        return wq, sw.t().contiguous()

    def forward(self, x2: torch.Tensor, W, W_quant, use_global_buffer: bool = True) -> torch.Tensor:
        """x2 W^T in FP8 for a forward NF4 weight W (out, in): the weight per output row, the input per token
        (once for inputs several projections read: q/k/v, gate/up)."""
        wq, sw = self.weight_fp8(W, W_quant, use_global_buffer, x2.dtype)
        xq, sx = self.quantize_input(x2)
        return torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw, out_dtype=x2.dtype)

    def input_grad(self, g2: torch.Tensor, W, W_quant) -> torch.Tensor:
        """g2 W in FP8 for a forward NF4 weight W (out, in), i.e. an input gradient: the GEMM wants W^T row-major,
        scaled per row of W^T (per input column of W), and the gradient per token."""
        wq, sw = self.weight_t_fp8(W, W_quant, g2.dtype)
        gq, sg = self.quantize(g2.contiguous())
        return torch._scaled_mm(gq, wq.t(), scale_a=sg, scale_b=sw, out_dtype=g2.dtype)
