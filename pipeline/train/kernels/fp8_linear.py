"""Frozen base weights in FP8 for LoRA training (`train.precision: fp8`): the base GEMMs at FP8 speed.

In LoRA training the base weights never change, so each targeted projection keeps two FP8 (e4m3) copies
with row-wise scales instead of its bf16 weight: W (out x in) scaled per output row for the forward
product, and W^T scaled per input column for the input gradient. Activations and output gradients are
quantized per token on the fly, and both GEMMs run through `torch._scaled_mm` (FP8 tensor cores on
Ada/Hopper/Blackwell: 1.62-1.72x bf16 on the 8B shapes, measured on the H200; it also runs on CPU, slowly,
for tests). The LoRA A/B products, norms, attention and the loss stay in bf16; the adapter trained this
way is saved and merged into the bf16 base as usual. Memory: two FP8 copies = one bf16 weight.

Projections that read the same input (q/k/v read one normed hidden state, gate/up another) quantize it once
(quantize.SharedInput). The quantizer and that cache belong to an `Fp8Context`, one per model, which every
FP8 base of the model holds (no module state: two models in one process do not share it).

    from pipeline.train import kernels
    applied = kernels.apply(peft_model, KernelOptions(fp8_base=True))   # the entry point; or by hand:
    from pipeline.train.kernels import fp8_linear
    n = fp8_linear.convert_lora_bases(peft_model, fp8_linear.Fp8Context())   # after get_peft_model
"""
from __future__ import annotations

import torch

from pipeline.train.kernels.quantize import RowQuantizer, SharedInput, quantize_rows


class Fp8Context:
    """What the FP8 bases of one model share: the row quantizer and the one-copy cache of their inputs."""

    def __init__(self, options=None, counters=None):
        triton = True if options is None else options.triton_quantizer
        share = True if options is None else options.share_quantized_input
        self.quantize = RowQuantizer(triton=triton)
        self.quantize_input = SharedInput(self.quantize, share=share, counters=counters)

    def forget_last_input(self) -> None:
        self.quantize_input.forget()


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_fwd, s_fwd, w_bwd, s_bwd, fc):
        xq, sx = fc.quantize_input(x)
        ctx.save_for_backward(w_bwd, s_bwd)
        ctx.fc = fc
        return torch._scaled_mm(xq, w_fwd.t(), scale_a=sx, scale_b=s_fwd, out_dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        w_bwd, s_bwd = ctx.saved_tensors
        gq, sg = ctx.fc.quantize(grad_out.contiguous())
        grad_x = torch._scaled_mm(gq, w_bwd.t(), scale_a=sg, scale_b=s_bwd, out_dtype=grad_out.dtype)
        return grad_x, None, None, None, None, None


class _Fp8LoraMatmul(torch.autograd.Function):
    """x W^T in FP8 plus the LoRA term s (x A^T) B^T, as one autograd node. Because this Function makes the
    base output, it may write the LoRA sum into it in place (no copy of the output, and no CopySlices: it is
    not a view), and in backward its GEMM adds the LoRA input gradient into the base one (no separate add
    pass). A and B are used in x's dtype, as bf16 autocast would; their gradients come back in their own."""

    @staticmethod
    def forward(ctx, x, w_fwd, s_fwd, w_bwd, s_bwd, a, b, scaling, fc):
        a16, b16 = a.to(x.dtype), b.to(x.dtype)
        xq, sx = fc.quantize_input(x)
        y = torch._scaled_mm(xq, w_fwd.t(), scale_a=sx, scale_b=s_fwd, out_dtype=x.dtype)
        h = torch.mm(x, a16.t())
        y.addmm_(h, b16.t(), alpha=scaling)
        ctx.save_for_backward(x, h, a16, b16, w_bwd, s_bwd)
        ctx.scaling, ctx.param_dtypes, ctx.fc = scaling, (a.dtype, b.dtype), fc
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, h, a16, b16, w_bwd, s_bwd = ctx.saved_tensors
        g = grad_out.contiguous()
        gq, sg = ctx.fc.quantize(g)
        grad_x = torch._scaled_mm(gq, w_bwd.t(), scale_a=sg, scale_b=s_bwd, out_dtype=g.dtype)
        grad_h = torch.mm(g, b16).mul_(ctx.scaling)
        grad_x.addmm_(grad_h, a16)
        grad_a = torch.mm(grad_h.t(), x).to(ctx.param_dtypes[0])
        grad_b = torch.mm(g.t(), h).mul_(ctx.scaling).to(ctx.param_dtypes[1])
        return grad_x, None, None, None, None, grad_a, grad_b, None, None


class Fp8FrozenLinear(torch.nn.Module):
    """Stands in for a frozen nn.Linear: same call, FP8 GEMMs forward and backward (input gradient only)."""

    def __init__(self, linear: torch.nn.Linear, context: Fp8Context | None = None):
        super().__init__()
        w = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        if self.in_features % 16 or self.out_features % 16:
            raise ValueError(f"FP8 GEMMs need widths divisible by 16, got {self.in_features} x {self.out_features}")
        self.context = context or Fp8Context()
        w_fwd, s_fwd = quantize_rows(w)                    # (out, in), scale per output row
        w_bwd, s_bwd = quantize_rows(w.t().contiguous())   # (in, out), scale per input column
        self.register_buffer("w_fwd", w_fwd)
        self.register_buffer("s_fwd", s_fwd.t().contiguous())   # (1, out)
        self.register_buffer("w_bwd", w_bwd)
        self.register_buffer("s_bwd", s_bwd.t().contiguous())   # (1, in)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.compute_dtype = w.dtype if w.dtype in (torch.bfloat16, torch.float16) else torch.bfloat16

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (for code that inspects base_layer.weight: dtype, device, shape)."""
        return (self.w_fwd.float() * self.s_fwd.t()).to(self.compute_dtype)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(self.compute_dtype)
        y = _Fp8Matmul.apply(x2, self.w_fwd, self.s_fwd, self.w_bwd, self.s_bwd, self.context)
        y = y.reshape(*shape[:-1], -1)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def forward_lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
        """forward(x) + scaling * (x A^T) B^T in one node (`_Fp8LoraMatmul`), the LoRA products in compute dtype."""
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(self.compute_dtype)
        y = _Fp8LoraMatmul.apply(x2, self.w_fwd, self.s_fwd, self.w_bwd, self.s_bwd, a, b, scaling, self.context)
        y = y.view(*shape[:-1], -1)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp8 e4m3 row-wise"


def convert_lora_bases(model, context: Fp8Context | None = None, where=lambda name: True) -> int:
    """Replace the frozen nn.Linear under every PEFT LoRA layer (whose module name `where` accepts) by its FP8
    stand-in, all sharing `context`; frees the bf16 weights."""
    from peft.tuners.lora import LoraLayer

    context = context or Fp8Context()
    n = 0
    for name, module in model.named_modules():
        base = getattr(module, "base_layer", None)
        if isinstance(module, LoraLayer) and type(base) is torch.nn.Linear and where(name):
            module.base_layer = Fp8FrozenLinear(base, context)
            n += 1
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return n
