"""LoRA forward with the adapter's scale and sum folded into its B GEMM (one `torch.addmm`).

PEFT computes `base(x) + lora_B(lora_A(x)) * scaling`: after the B product, one kernel multiplies by the
scale and one adds, each a full pass over the projection's output (and their mirror in backward). On the
H200 profile of our TRL backend (8B, micro-batch 8 x 1024) those two kernels were 62 ms of a 416 ms step.
`torch.addmm(base_out, lora_A(x), B^T, alpha=scaling)` lets the GEMM read the base output and write the sum
itself. Same value, same gradients (checked against PEFT on CPU in tests/unit/test_train_fused_lora.py).
Not in place: `base_out.addmm_` (to save addmm's 10 ms copy of the base output per step) made the H200 step
slower, 18.4k vs 19.6k tok/s: autograd records an in-place write to a view as CopySlices, whose backward
copies the whole gradient (43 ms of DtoD copies per step instead of 10), and torchao's float8 Linear
refuses it outright (its output is a view made inside a custom Function).

With an FP8 base (fp8_linear.Fp8FrozenLinear) the fusion goes one step further: base GEMM and LoRA term are
one autograd node that owns the base output, so the LoRA sum is written into it in place after all (no
copy, no CopySlices), and in backward the LoRA input gradient is accumulated by its GEMM into the base one
(no add pass: 7 of 12 gradient adds per layer).

It also skips PEFT's cast of each LoRA input to the adapter's fp32: under the Trainer's bf16 autocast the
LoRA products run in bf16 anyway, and the cast only made an fp32 copy of every projection's input (saved
for backward). It applies to plain LoRA under autocast (one active adapter, no dropout, no DoRA /
variants, no LoRA bias, unmerged); anything else takes PEFT's own forward, checked on every call, so
enabling or disabling adapters, merging, mixed-adapter batches or a forward outside autocast keep working.

    from pipeline.train.kernels import fused_lora   # (kernels.apply does this when the plan says fused_lora)
    n = fused_lora.apply(peft_model)    # after get_peft_model (and fp8_linear.convert_lora_bases); returns count
    fused_lora.apply(peft_model, one_node=False)   # FP8 bases: the LoRA term as its own nodes (a bench's before)
"""
from __future__ import annotations

import functools
import types

import torch


def _plain(layer, x, kwargs) -> str | None:
    """The active adapter's name when the fused path gives PEFT's exact result, else None."""
    if layer.disable_adapters or layer.merged or kwargs.get("adapter_names") is not None:
        return None
    active = layer.active_adapters
    if len(active) != 1:
        return None
    name = active[0]
    if not torch.is_autocast_enabled(x.device.type) and x.dtype != layer.lora_A[name].weight.dtype:
        return None   # PEFT's path casts x to the adapter's dtype
    if (name not in layer.lora_A or name in getattr(layer, "lora_variant", {}) or layer.use_dora.get(name)
            or not isinstance(layer.lora_dropout[name], torch.nn.Identity) or layer.lora_B[name].bias is not None):
        return None
    return name


def _in_compute_dtype(base, x: torch.Tensor) -> bool:
    """Whether the LoRA products would run in the FP8 base's compute dtype here (autocast to it, or x in it)."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev) == base.compute_dtype
    return x.dtype == base.compute_dtype


def _forward(self, x: torch.Tensor, *args, one_node: bool = True, **kwargs) -> torch.Tensor:
    name = _plain(self, x, kwargs)
    if name is None:
        return type(self).forward(self, x, *args, **kwargs)
    base = self.base_layer
    if (one_node and getattr(base, "forward_lora", None) is not None and _in_compute_dtype(base, x)
            and not args and not kwargs):
        # FP8 base (fp8_linear): base GEMM and LoRA term in one autograd node, the sum written in place
        return base.forward_lora(x, self.lora_A[name].weight, self.lora_B[name].weight, self.scaling[name])
    y = base(x, *args, **kwargs)
    h = self.lora_A[name](x)
    out = torch.addmm(y.reshape(-1, y.shape[-1]), h.reshape(-1, h.shape[-1]), self.lora_B[name].weight.t(),
                      alpha=self.scaling[name])
    return out.view(y.shape)


def apply(model, one_node: bool = True) -> int:
    """Give every PEFT LoRA Linear the fused forward; returns how many layers took it. `one_node`: over an FP8
    base, base GEMM and LoRA term as one autograd node (the measured best)."""
    from peft.tuners.lora import Linear as LoraLinear

    n = 0
    for m in model.modules():
        if isinstance(m, LoraLinear) and not getattr(m, "fan_in_fan_out", False):
            m.forward = types.MethodType(functools.partial(_forward, one_node=one_node), m)
            n += 1
    return n
