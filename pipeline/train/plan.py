"""Training plan: every decision made before a model is loaded, with the estimate behind it.

`make_plan(cfg)` checks the model folder, reads its config.json, counts parameters, looks at the
device (free VRAM on CUDA, RAM and bf16 support on CPU) and picks backend, precision, micro-batch,
gradient accumulation and gradient checkpointing so that the effective batch is the configured one and
the estimate fits. A config that cannot fit, a missing model, or a backend the machine cannot run is a
ConfigError here, before anything heavy happens. The plan is logged and saved beside the run.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import ConfigError
from pipeline.train import varlen

GiB = 1024 ** 3
COMFORT = 0.85  # use at most this share of free memory


@dataclass
class Device:
    kind: str                 # "cuda" | "cpu"
    name: str
    free_bytes: int
    total_bytes: int
    bf16: bool
    count: int = 1
    capability: tuple = ()    # CUDA compute capability (major, minor); () on CPU


@dataclass
class Plan:
    backend: str
    precision: str            # "4bit" | "bf16" | "fp32"
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool
    liger: bool
    packing: bool
    device: Device
    params: int
    lora_params: int
    estimate_bytes: int
    reasons: list[str] = field(default_factory=list)
    world_size: int = 1       # processes under torchrun / accelerate launch (DDP); 1 otherwise
    attention: str = "sdpa"   # transformers attn_implementation (packed: flash_attention_2 / sqlgenie_varlen; unsloth: its own)

    def describe(self) -> str:
        d = self.device
        lines = [
            f"backend {self.backend}, precision {self.precision}, micro-batch {self.micro_batch} x accum "
            f"{self.grad_accum}{f' x {self.world_size} processes (DDP)' if self.world_size > 1 else ''}, gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}, "
            f"liger {'on' if self.liger else 'off'}, packing {'on' if self.packing else 'off'}",
            f"device {d.name}: {d.free_bytes / GiB:.1f} GiB free of {d.total_bytes / GiB:.1f} GiB; model "
            f"{self.params / 1e9:.2f}B params, LoRA {self.lora_params / 1e6:.1f}M; estimated peak "
            f"{self.estimate_bytes / GiB:.1f} GiB",
        ]
        return "\n".join(lines + [f"  - {r}" for r in self.reasons])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


# ---------------------------------------------------------------------------------------- device
def detect_device() -> Device:
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return Device("cuda", torch.cuda.get_device_name(0), free, total, torch.cuda.is_bf16_supported(),
                      torch.cuda.device_count(), tuple(torch.cuda.get_device_capability(0)))
    import psutil

    vm = psutil.virtual_memory()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    return Device("cpu", f"CPU x{os.cpu_count()}", vm.available, vm.total, bf16)


# ---------------------------------------------------------------------------------------- model
def read_model_config(path: Path) -> dict:
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ConfigError([f"model.name_or_path: {path} has no config.json (give a local folder with config.json and "
                           "the weights; nothing is downloaded at run time)"])
    return json.loads(cfg_file.read_text())


def count_params(mc: dict) -> tuple[int, dict[str, tuple[int, int]]]:
    """Parameter count of a Llama-style decoder, and (in, out) of each projection that LoRA can target."""
    h, inter, layers = mc["hidden_size"], mc["intermediate_size"], mc["num_hidden_layers"]
    heads = mc["num_attention_heads"]
    kv = mc.get("num_key_value_heads", heads)
    hd = mc.get("head_dim") or h // heads
    vocab = mc["vocab_size"]
    shapes = {"q_proj": (h, heads * hd), "k_proj": (h, kv * hd), "v_proj": (h, kv * hd), "o_proj": (heads * hd, h),
              "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h)}
    per_layer = sum(i * o for i, o in shapes.values()) + 2 * h
    emb = vocab * h * (1 if mc.get("tie_word_embeddings") else 2)
    return layers * per_layer + emb + h, shapes


def estimate_bytes(mc: dict, params: int, lora_params: int, precision: str, micro: int, seq: int, gc: bool,
                   fused_ce: bool, offload_checkpoints: bool = False) -> int:
    """Peak memory of LoRA training, calibrated on the 8B measurements in docs/benchmarks.md (H200: Unsloth
    NF4 + recompute 12.5 GiB measured vs 12.4 estimated; bf16 + recompute 22.2 vs 22.0; without recompute
    the estimate is 7-9% high)."""
    h, layers, vocab = mc["hidden_size"], mc["num_hidden_layers"], mc["vocab_size"]
    projections = layers * sum(i * o for i, o in count_params(mc)[1].values())
    # NF4 + double quant ~0.53 bytes per projection weight; embeddings, lm_head and norms stay 16-bit.
    # fp8: two FP8 copies of each projection (forward, input gradient) = the bf16 size.
    per_proj = {"4bit": 0.53, "bf16": 2.0, "fp8": 2.0, "fp32": 4.0}[precision]
    weight = per_proj * projections + (4.0 if precision == "fp32" else 2.0) * (params - projections)
    lora = 16 * lora_params                                  # fp32 weights + grads + Adam moments
    tokens = micro * seq
    layer_work = tokens * h * 32                             # one layer's activations while it runs
    checkpoints = 0 if offload_checkpoints else tokens * layers * h * 2
    act = (checkpoints + layer_work) if gc else layers * layer_work
    logits = 0 if fused_ce else tokens * vocab * 4 * 2       # fp32 logits + their gradient
    return int(weight + lora + act + logits + 1.0 * GiB)


# ---------------------------------------------------------------------------------------- plan
def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def make_plan(cfg: RunConfig, model_path: Path, device: Device | None = None) -> Plan:
    t = cfg.train
    mc = read_model_config(model_path)
    device = device or detect_device()
    problems, reasons = [], []
    if mc.get("model_type") not in (None, "llama", "mistral", "qwen2", "qwen3"):
        reasons.append(f"model_type {mc.get('model_type')}: estimates assume a Llama-style decoder")
    params, shapes = count_params(mc)
    lora_params = mc["num_hidden_layers"] * sum(t.lora.r * (i + o) for name, (i, o) in shapes.items()
                                                 if name in t.lora.target_modules)
    unknown = [m for m in t.lora.target_modules if m not in shapes]
    if unknown:
        problems.append(f"train.lora.target_modules: {', '.join(unknown)} not in a Llama-style block "
                        f"({', '.join(shapes)})")

    cuda = device.kind == "cuda"
    from pipeline.train import fp8_base

    fp8_ok, fp8_why = fp8_base.supported(device)
    liger = t.liger and cuda and _has("liger_kernel")
    if t.liger and cuda and not liger:
        reasons.append("liger requested but liger-kernel is not installed: off")
    seq = cfg.data.max_seq_len
    budget = COMFORT * device.free_bytes
    if t.max_memory_gib is not None:
        if t.max_memory_gib * GiB > budget:
            reasons.append(f"train.max_memory_gib {t.max_memory_gib:g} is above 85% of the free memory: the plan keeps "
                           f"to {budget / GiB:.1f} GiB")
        else:
            budget = t.max_memory_gib * GiB
            reasons.append(f"memory budget {t.max_memory_gib:g} GiB (train.max_memory_gib)")

    # precision first (memory decides 16-bit vs 4-bit), then the fastest backend for it
    bf16_ok = device.bf16
    if t.precision == "auto":
        if cuda:
            est = estimate_bytes(mc, params, lora_params, "bf16", 1, seq, True, liger or t.backend == "unsloth",
                                 t.backend == "unsloth")
            if est > budget:
                precision = "4bit"
            elif fp8_ok and t.backend != "unsloth":       # CUDA: compute capability 8.9+
                precision = "fp8"
            else:
                precision = "bf16"
            reasons.append(f"precision auto -> {precision}: bf16 weights + LoRA at micro-batch 1 with checkpointing need "
                           f"~{est / GiB:.1f} GiB of {budget / GiB:.1f} GiB usable"
                           + ("; FP8 tensor cores: frozen base GEMMs in FP8 (18.3k tok/s vs 16.1k for Unsloth bf16: 1.14x, H200 8B; "
                              "eval loss +4.3% vs a bf16 base after 20 SmolLM2 steps, NF4 +9.7%: "
                              "train.precision=bf16 for bf16 numerics)"
                              if precision == "fp8" else ""))
        else:
            precision = "bf16" if bf16_ok else "fp32"
            reasons.append(f"precision auto -> {precision} on CPU ({'AVX512-BF16/AMX present' if bf16_ok else 'no bf16 units'})")
    else:
        precision = t.precision
        if precision == "bf16" and not bf16_ok:
            problems.append(f"train.precision: bf16 is not supported on {device.name}; use fp32 or auto")
        if precision == "fp8":
            (reasons if fp8_ok else problems).append(fp8_why)

    backend = t.backend
    if backend == "auto":
        if cuda and precision == "4bit" and _has("unsloth"):
            backend = "unsloth"
            reasons.append("backend auto -> unsloth: its NF4 kernels (QLoRA 11.0k tok/s vs 3.4k for bitsandbytes + "
                           "Liger, H200 8B)")
        else:
            backend = "trl"
            reasons.append("backend auto -> trl: " + (
                "unsloth needs CUDA" if not cuda else
                "unsloth not installed" if precision == "4bit" else
                "16-bit LoRA with varlen packing and fused LoRA GEMMs (packed Gretel-like rows in bf16: 15.0k real "
                "tok/s vs 8.0k for Unsloth's packed path, H200 8B)"))
    elif backend == "unsloth" and not cuda:
        problems.append("train.backend: unsloth needs a CUDA GPU; use trl (or auto) on this machine")
    elif backend == "unsloth" and not _has("unsloth"):
        problems.append("train.backend: unsloth is not installed (pip install -r requirements-gpu.txt)")
    if precision == "4bit" and not _has("bitsandbytes"):
        problems.append("train.precision: 4bit needs bitsandbytes (pip install bitsandbytes)")
    if precision == "fp8" and backend == "unsloth":
        problems.append("train.precision fp8 runs on the trl backend (Unsloth keeps its own weights): set "
                        "train.backend trl or auto")
    fused_ce = liger or backend == "unsloth"
    # Padding-free packing flattens a micro-batch into one sequence whose position ids restart per row; the
    # attention must then run per row: FlashAttention's varlen kernel (flash_attn) or, without it, torch's
    # own varlen FlashAttention (pipeline/train/varlen.py). On CPU packing stays off: per-row SDPA is exact
    # but packed micro-batches hold many more rows, so the CPU configs' step counts would change meaning.
    has_flash = _has("flash_attn")
    packing = t.packing and cuda and (has_flash or varlen.available_on_cuda())
    if t.packing and not packing:
        reasons.append("packing off: " + ("padding-free packing runs on CUDA only; batches are padded to their "
                                          "longest row" if not cuda else "no varlen attention (flash_attn or "
                                          "torch >= 2.10); batches are padded to their longest row"))
    attention = "sdpa"
    if packing:
        attention = "unsloth" if backend == "unsloth" else "flash_attention_2" if has_flash else varlen.NAME
        kernel = {"unsloth": "Unsloth's packed attention", "flash_attention_2": "flash_attn"}.get(
            attention, "torch varlen FlashAttention")
        reasons.append(f"packing on: rows packed into {cfg.data.max_seq_len}-token sequences, attention per row by "
                       f"{kernel} (1.95x real tokens/s in bf16, 2.36x with the FP8 base, vs the best anchor padded on Gretel-like lengths, H200)")
    # Unsloth's gradient checkpointing keeps the layer inputs in CPU memory, not on the GPU
    offload = backend == "unsloth"

    def fits(prec: str, micro: int, gc: bool) -> tuple[bool, int]:
        est = estimate_bytes(mc, params, lora_params, prec, micro, seq, gc, fused_ce, offload and gc)
        return est <= budget, est

    # micro-batch and gradient checkpointing: biggest micro-batch (dividing batch_size) that fits
    gc_choice = {"on": [True], "off": [False], "auto": [False, True]}[t.gradient_checkpointing]
    # under torchrun / accelerate launch every process takes batch_size / world rows per optimizer step
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if t.batch_size % world:
        problems.append(f"train.batch_size {t.batch_size} does not split over {world} processes: use a multiple of {world}")
    per_rank = max(1, t.batch_size // world)
    candidates = [t.micro_batch_size] if t.micro_batch_size else \
        [m for m in (16, 8, 4, 2, 1) if per_rank % m == 0 and (cuda or m <= 4)]
    chosen = None
    for gc in gc_choice:      # prefer no recompute: ~25% faster when the memory is there
        for m in candidates:
            ok, est = fits(precision, m, gc)
            if ok:
                chosen = (m, gc, est)
                break
        if chosen:
            break
    if not chosen:
        m = candidates[-1] if candidates else 1
        est = fits(precision, m, gc_choice[-1])[1]
        problems.append(f"does not fit: {precision} at micro-batch {m}, seq {seq} needs ~{est / GiB:.1f} GiB, "
                        f"{device.name} has {device.free_bytes / GiB:.1f} GiB free, {budget / GiB:.1f} GiB usable "
                        f"(try precision 4bit, a smaller data.max_seq_len, gradient_checkpointing on"
                        f"{', or a larger train.max_memory_gib' if t.max_memory_gib is not None else ''})")
        chosen = (m, True, est)
    micro, gc, est = chosen
    if t.gradient_checkpointing == "auto":
        reasons.append(f"gradient checkpointing auto -> {'on' if gc else 'off'}")
    grad_accum = max(1, per_rank // micro) * t.grad_accum
    if world > 1:
        reasons.append(f"DDP over {world} processes: {micro} x {grad_accum} rows each, {micro * grad_accum * world} "
                       f"rows per optimizer step in all")
    if problems:
        raise ConfigError(problems, f"training plan for '{cfg.name}'")
    return Plan(backend, precision, micro, grad_accum, gc, liger, packing, device, params, lora_params, est, reasons,
                world, attention)
