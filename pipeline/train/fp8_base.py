"""Frozen base weights in FP8 for LoRA training (`train.precision: fp8`): the base GEMMs at FP8 speed.

In LoRA training the base weights never change, so each targeted projection keeps two FP8 (e4m3) copies
with row-wise scales instead of its bf16 weight: W (out x in) scaled per output row for the forward
product, and W^T scaled per input column for the input gradient. Activations and output gradients are
quantized per token on the fly, and both GEMMs run through `torch._scaled_mm` (FP8 tensor cores on
Ada/Hopper/Blackwell: 1.62-1.72x bf16 on the 8B shapes, measured on the H200; it also runs on CPU, slowly,
for tests). The LoRA A/B products, norms, attention and the loss stay in bf16; the adapter trained this
way is saved and merged into the bf16 base as usual. Memory: two FP8 copies = one bf16 weight.

Projections that read the same input (q/k/v read one normed hidden state, gate/up another) quantize it once:
the last quantized activation is kept with its FP8 copy, and a call on the same storage, shape, strides and
version counter (nothing wrote to it since) takes the copy. Holding the tensor keeps its memory from being
handed to another tensor, so a pointer match is the same values.

    from pipeline.train import fp8_base
    n = fp8_base.convert_lora_bases(peft_model)   # after get_peft_model; returns how many were converted
"""
from __future__ import annotations

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x as e4m3, per-row float32 scale (rows x 1)) with x ~= q * scale."""
    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / FP8_MAX
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


_fused = None   # quantize_rows compiled by torch.compile (eager: 4 passes over x in fp32)
_kernel = None  # fp8_rows.quantize_rows (one-pass Triton kernel), False once it could not run here


def _quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """quantize_rows: the one-pass Triton kernel on CUDA (fp8_rows), else torch.compile's, else eager."""
    global _kernel
    if x.is_cuda and _kernel is not False:
        try:
            if _kernel is None:
                from pipeline.train import fp8_rows  # heavy: triton
                _kernel = fp8_rows.quantize_rows
            return _kernel(x)
        except Exception as e:  # noqa: BLE001 - no Triton / kernel failed to build: the compiled path is correct
            print(f"[train] fp8: the Triton quantizer cannot run ({type(e).__name__}: {str(e)[:200]}); "
                  f"torch.compile's instead", flush=True)
            _kernel = False
    return _quantize_compiled(x)


def _quantize_compiled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """quantize_rows, fused by torch.compile on CUDA; eager on CPU or if compiling fails (said once)."""
    global _fused
    if not x.is_cuda:
        return quantize_rows(x)
    if _fused is None:
        _fused = torch.compile(quantize_rows, fullgraph=True)
    if _fused is not quantize_rows:
        try:
            if x.shape[0] > 1:
                # rows vary with packing (every micro-batch has its own token count): one kernel for any
                # number of rows from the first call, not a compile per shape
                torch._dynamo.mark_dynamic(x, 0)
            return _fused(x)
        except Exception as e:  # noqa: BLE001 - no Triton / no compiler: eager is correct, only slower
            print(f"[train] fp8: torch.compile of the quantizer failed ({type(e).__name__}: {e}); eager", flush=True)
            _fused = quantize_rows
    return quantize_rows(x)


class _LastInput:
    """The last activation quantized, its version counter then, and its FP8 copy with the scales."""
    x: torch.Tensor | None = None
    version = -1
    quantized: tuple[torch.Tensor, torch.Tensor] | None = None
    hits = 0                       # how many quantizations were saved (tests and the bench read it)


def quantize_input(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """_quantize, once per input: the q/k/v (gate/up) projections of one layer share it (see the module)."""
    last = _LastInput
    if (last.x is not None and last.x.data_ptr() == x.data_ptr() and last.x.shape == x.shape
            and last.x.stride() == x.stride() and last.x.dtype == x.dtype and last.version == x._version):
        last.hits += 1
        return last.quantized
    last.x, last.version, last.quantized = None, -1, None    # release the previous one before the new copy
    quantized = _quantize(x)
    last.x, last.version, last.quantized = x, x._version, quantized
    return quantized


def forget_last_input() -> None:
    """Drop the held activation (after a step, before measuring memory)."""
    _LastInput.x, _LastInput.version, _LastInput.quantized = None, -1, None


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_fwd, s_fwd, w_bwd, s_bwd):
        xq, sx = quantize_input(x)
        ctx.save_for_backward(w_bwd, s_bwd)
        return torch._scaled_mm(xq, w_fwd.t(), scale_a=sx, scale_b=s_fwd, out_dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        w_bwd, s_bwd = ctx.saved_tensors
        gq, sg = _quantize(grad_out.contiguous())
        grad_x = torch._scaled_mm(gq, w_bwd.t(), scale_a=sg, scale_b=s_bwd, out_dtype=grad_out.dtype)
        return grad_x, None, None, None, None


class _Fp8LoraMatmul(torch.autograd.Function):
    """x W^T in FP8 plus the LoRA term s (x A^T) B^T, as one autograd node. Because this Function makes the
    base output, it may write the LoRA sum into it in place (no copy of the output, and no CopySlices: it is
    not a view), and in backward its GEMM adds the LoRA input gradient into the base one (no separate add
    pass). A and B are used in x's dtype, as bf16 autocast would; their gradients come back in their own."""

    @staticmethod
    def forward(ctx, x, w_fwd, s_fwd, w_bwd, s_bwd, a, b, scaling):
        a16, b16 = a.to(x.dtype), b.to(x.dtype)
        xq, sx = quantize_input(x)
        y = torch._scaled_mm(xq, w_fwd.t(), scale_a=sx, scale_b=s_fwd, out_dtype=x.dtype)
        h = torch.mm(x, a16.t())
        y.addmm_(h, b16.t(), alpha=scaling)
        ctx.save_for_backward(x, h, a16, b16, w_bwd, s_bwd)
        ctx.scaling, ctx.param_dtypes = scaling, (a.dtype, b.dtype)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, h, a16, b16, w_bwd, s_bwd = ctx.saved_tensors
        g = grad_out.contiguous()
        gq, sg = _quantize(g)
        grad_x = torch._scaled_mm(gq, w_bwd.t(), scale_a=sg, scale_b=s_bwd, out_dtype=g.dtype)
        grad_h = torch.mm(g, b16).mul_(ctx.scaling)
        grad_x.addmm_(grad_h, a16)
        grad_a = torch.mm(grad_h.t(), x).to(ctx.param_dtypes[0])
        grad_b = torch.mm(g.t(), h).mul_(ctx.scaling).to(ctx.param_dtypes[1])
        return grad_x, None, None, None, None, grad_a, grad_b, None


class Fp8FrozenLinear(torch.nn.Module):
    """Stands in for a frozen nn.Linear: same call, FP8 GEMMs forward and backward (input gradient only)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        if self.in_features % 16 or self.out_features % 16:
            raise ValueError(f"FP8 GEMMs need widths divisible by 16, got {self.in_features} x {self.out_features}")
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
        y = _Fp8Matmul.apply(x2, self.w_fwd, self.s_fwd, self.w_bwd, self.s_bwd).reshape(*shape[:-1], -1)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def forward_lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
        """forward(x) + scaling * (x A^T) B^T in one node (`_Fp8LoraMatmul`), the LoRA products in compute dtype."""
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(self.compute_dtype)
        y = _Fp8LoraMatmul.apply(x2, self.w_fwd, self.s_fwd, self.w_bwd, self.s_bwd, a, b, scaling)
        y = y.view(*shape[:-1], -1)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp8 e4m3 row-wise"


def convert_lora_bases(model, where=lambda name: True) -> int:
    """Replace the frozen nn.Linear under every PEFT LoRA layer (whose module name `where` accepts) by its FP8
    stand-in; frees the bf16 weights."""
    from peft.tuners.lora import LoraLayer

    n = 0
    for name, module in model.named_modules():
        base = getattr(module, "base_layer", None)
        if isinstance(module, LoraLayer) and type(base) is torch.nn.Linear and where(name):
            module.base_layer = Fp8FrozenLinear(base)
            n += 1
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return n
