"""The training kernels, in a room of their own: one options record, one question, one entry point.

    from pipeline.train import kernels
    kernels.supported(device)              # what this device can run: Support(fp8, triton, varlen, reasons)
    opts = plan.kernels                    # a KernelOptions, chosen by the plan, written to plan.json
    applied = kernels.apply(model, opts)   # after the backend made the (PEFT / Unsloth) model; returns Applied
    applied.counters                       # products that took the FP8 paths, shared quantizations (tests, benches)

What lives here, by role (each module says how it works and what it was measured at):
- `quantize.py`            the row-wise FP8 quantizer (eager reference, torch.compile, the Triton kernel in
                           `quantize_triton.py`) and the one-copy cache for inputs several projections read;
- `fp8_linear.py`          frozen LoRA bases in FP8 (`train.precision: fp8`): `Fp8FrozenLinear`;
- `fused_lora.py`          the LoRA scale and sum folded into the B GEMM (and into the FP8 base's node);
- `varlen_attention.py`    packed rows attending only to themselves (torch's varlen FlashAttention);
- `nf4_decode.py`          what an NF4 weight holds (block and column absmax; which calls carry NF4 weights);
- `nf4_decode_triton.py`   NF4 straight to FP8 in one pass, forward and transposed (Triton);
- `nf4_products.py`        QLoRA's frozen GEMMs in FP8 from NF4 weights;
- `nf4_blocks.py`          Unsloth's fused MLP / q,k,v / o blocks with every base product in FP8, backward too;
- `unsloth_patch.py`       the one place that reaches into Unsloth (its `matmul_lora` and `_apply`).

Switches are fields of `KernelOptions` (no module globals): benches ask for a variant by replacing the
plan's options (`dataclasses.replace(plan, kernels=...)`), never by patching this package. Importing this
package loads no torch (the dashboard's plan preview imports the plan, which imports this).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.train.kernels import varlen_attention


@dataclass(frozen=True)
class KernelOptions:
    """Which of our kernels a training uses; the plan chooses them (pipeline/train/plan.py) and writes them to
    plan.json. The defaults of the fields below `qlora_fp8` are the measured best; a bench turns one off to
    measure what it is worth."""
    fp8_base: bool = False                 # frozen LoRA bases as FP8 copies (train.precision fp8, TRL backend)
    fp8_layers: Literal["all", "mlp"] = "all"   # which projections get the FP8 base ("mlp": gate/up/down only)
    fused_lora: bool = False               # LoRA scale + sum inside the B GEMM (CUDA, TRL backend)
    fp8_lora_one_node: bool = True         # with fp8_base: base GEMM and LoRA term one autograd node, sum in place
    share_quantized_input: bool = True     # q/k/v (gate/up) quantize the input they share once
    triton_quantizer: bool = True          # the one-pass Triton row quantizer on CUDA (else torch.compile's)
    qlora_fp8: bool = False                # Unsloth QLoRA: the frozen NF4 GEMMs in FP8 (needs FP8 tensor cores)
    qlora_fp8_blocks: bool = True          # ... Unsloth's fused blocks too, backward included (nf4_blocks.py)
    nf4_transpose_kernel: bool = True      # ... W^T decoded straight to FP8 for the input gradients

    def describe(self) -> str:
        on = [name for name in ("fp8_base", "fused_lora", "qlora_fp8") if getattr(self, name)]
        off = [name for name, d in _TUNING.items() if getattr(self, name) != d]
        text = ", ".join(on) or "none"
        return text + (f" (changed from the measured best: {', '.join(off)})" if off else "")


_TUNING = {"fp8_layers": "all", "fp8_lora_one_node": True, "share_quantized_input": True, "triton_quantizer": True,
           "qlora_fp8_blocks": True, "nf4_transpose_kernel": True}


@dataclass(frozen=True)
class Support:
    """What a device can run of ours, each with the reason when not."""
    fp8: bool
    triton: bool
    varlen: bool
    reasons: dict[str, str] = field(default_factory=dict)


def supported(device) -> Support:
    """What `device` (pipeline.train.plan.Device) can run: FP8 GEMMs (compute capability 8.9+: Ada, Hopper,
    Blackwell; on a CPU torch emulates them, slowly, for tests), Triton (CUDA), torch's varlen attention
    (torch >= 2.10 on CUDA). Decided without importing torch when it is not loaded yet."""
    reasons = {}
    if device.kind != "cuda":
        reasons["fp8"] = "fp8 on CPU: emulated by torch._scaled_mm, for tests (slower than bf16)"
        reasons["triton"] = "Triton kernels need CUDA"
        reasons["varlen"] = "varlen attention needs CUDA (CPU: one SDPA call per row)"
        return Support(True, False, False, reasons)
    cc = tuple(device.capability) or (0, 0)
    fp8 = cc >= (8, 9)
    reasons["fp8"] = (f"fp8 base GEMMs on {device.name} (compute capability {cc[0]}.{cc[1]})" if fp8 else
                      f"train.precision fp8 needs FP8 tensor cores (compute capability 8.9+: Ada, Hopper, "
                      f"Blackwell); {device.name} is {cc[0]}.{cc[1]}: use bf16 or 4bit")
    varlen = varlen_attention.available_on_cuda()
    if not varlen:
        reasons["varlen"] = "this torch has no varlen FlashAttention (torch >= 2.10)"
    return Support(fp8, True, varlen, reasons)


@dataclass
class Counters:
    """How often the fast paths ran (tests and benches read them; one object per `apply`)."""
    fp8_products: int = 0        # QLoRA base products that took the FP8 path (nf4_products)
    shared_inputs: int = 0       # quantizations saved because projections shared their input (fp8_linear)


@dataclass
class Applied:
    """What `apply` did to a model."""
    fp8_bases: int = 0           # projections whose frozen base is now FP8
    fused: int = 0               # LoRA layers with the fused forward
    unsloth_patched: bool = False
    counters: Counters = field(default_factory=Counters)
    contexts: list = field(default_factory=list)   # Fp8Context / Nf4Products: each holds a shared input

    def describe(self) -> str:
        parts = []
        if self.fp8_bases:
            parts.append(f"{self.fp8_bases} frozen projections in FP8 (e4m3, row-wise scales)")
        if self.fused:
            parts.append(f"{self.fused} LoRA layers with the fused forward")
        if self.unsloth_patched:
            parts.append("Unsloth's frozen NF4 GEMMs in FP8 (forward, recompute, input gradients)")
        return "; ".join(parts) or "no kernels of ours"

    def forget_last_input(self) -> None:
        """Drop the inputs the FP8 paths hold for sharing (after a step, before measuring memory)."""
        for context in self.contexts:
            context.forget_last_input()


def apply(model, options: KernelOptions) -> Applied:
    """Give `model` the kernels `options` asks for: FP8 bases and the fused LoRA forward for a PEFT model (TRL
    backend), the FP8 products for Unsloth's QLoRA layers (after `import unsloth`). Returns what was done."""
    applied = Applied()
    if options.fp8_base:
        from pipeline.train.kernels import fp8_linear  # heavy: torch, peft

        context = fp8_linear.Fp8Context(options, applied.counters)
        applied.contexts.append(context)
        where = (lambda name: ".mlp." in name) if options.fp8_layers == "mlp" else (lambda name: True)
        applied.fp8_bases = fp8_linear.convert_lora_bases(model, context, where)
    if options.fused_lora:
        from pipeline.train.kernels import fused_lora  # heavy: torch, peft

        applied.fused = fused_lora.apply(model, one_node=options.fp8_lora_one_node)
    if options.qlora_fp8:
        from pipeline.train.kernels import unsloth_patch  # heavy: torch, unsloth

        products = unsloth_patch.patch(options, applied.counters)
        applied.unsloth_patched = products is not None
        applied.contexts += [products] if products is not None else []
    return applied
