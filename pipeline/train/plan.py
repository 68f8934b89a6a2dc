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
from importlib import metadata
from pathlib import Path

from core import envs
from core.errors import ConfigError
from core.measured import FIGURES
from core.modelinfo import count_params, read_model_config
from pipeline.config import RunConfig
from pipeline.train import kernels
from pipeline.train.kernels import KernelOptions, varlen_attention

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
    lora_params: int          # trainable parameters: the adapters', or every weight with method full
    estimate_bytes: int
    reasons: list[str] = field(default_factory=list)
    world_size: int = 1       # processes under torchrun / accelerate launch (DDP); 1 otherwise
    attention: str = "sdpa"   # transformers attn_implementation (packed: flash_attention_2 / sqlgenie_varlen; unsloth: its own)
    method: str = "lora"      # "lora" | "full" (every weight trains: fp32 weights, no adapter)
    kernels: KernelOptions = field(default_factory=KernelOptions)   # ours the run uses (pipeline/train/kernels)

    def describe(self) -> str:
        d = self.device
        lines = [
            f"backend {self.backend}, precision {self.precision}, micro-batch {self.micro_batch} x accum "
            f"{self.grad_accum}{f' x {self.world_size} processes (DDP)' if self.world_size > 1 else ''}, gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}, "
            f"liger {'on' if self.liger else 'off'}, packing {'on' if self.packing else 'off'}",
            f"device {d.name}: {d.free_bytes / GiB:.1f} GiB free of {d.total_bytes / GiB:.1f} GiB; model "
            f"{self.params / 1e9:.2f}B params, "
            + ("all trainable (full fine-tuning)" if self.method == "full" else f"LoRA {self.lora_params / 1e6:.1f}M")
            + "; estimated peak "
            f"{self.estimate_bytes / GiB:.1f} GiB",
            f"kernels: {self.kernels.describe()}",
        ]
        return "\n".join(lines + [f"  - {r}" for r in self.reasons])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan a launcher wrote (plan.json): DDP workers take their parent's plan instead of making another."""
        d = json.loads(text)
        d["device"] = Device(**{**d["device"], "capability": tuple(d["device"].get("capability") or ())})
        d["kernels"] = KernelOptions(**d.get("kernels", {}))
        return cls(**d)


# ---------------------------------------------------------------------------------------- device
def detect_device(probe: str = "torch") -> Device:
    """The device a training here would use. probe "torch" (the trainer): torch decides. probe "nvml" (the
    dashboard's plan preview): NVML and the installed torch's build decide, so torch (seconds and ~0.5 GB to
    import) never loads in the dashboard's process; the train job plans again with torch."""
    if probe == "nvml":
        return _nvml_device() or _cpu_device()
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return Device("cuda", torch.cuda.get_device_name(0), free, total, torch.cuda.is_bf16_supported(),
                      torch.cuda.device_count(), tuple(torch.cuda.get_device_capability(0)))
    return _cpu_device()


def _cpu_device() -> Device:
    import psutil

    vm = psutil.virtual_memory()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    return Device("cpu", f"CPU x{os.cpu_count()}", vm.available, vm.total, bf16)


def _nvml_device() -> Device | None:
    """GPU 0 as NVML sees it, or None: no driver, no GPU, or a torch built without CUDA (it would train on
    the CPU)."""
    try:
        if "+cpu" in metadata.version("torch"):
            return None
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        name = pynvml.nvmlDeviceGetName(h)
        cap = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(h))
        return Device("cuda", name if isinstance(name, str) else name.decode(), mem.free, mem.total, cap >= (8, 0),
                      pynvml.nvmlDeviceGetCount(), cap)
    except Exception:  # noqa: BLE001 - torch or the NVML library missing, no driver, no GPU: not a GPU here
        return None


def fp8_supported(device: Device) -> tuple[bool, str]:
    """FP8 tensor cores for the frozen base GEMMs (kernels.supported), with the reason."""
    support = kernels.supported(device)
    return support.fp8, support.reasons["fp8"]


# ---------------------------------------------------------------------------------------- memory
def estimate_bytes(mc: dict, params: int, lora_params: int, precision: str, micro: int, seq: int, gc: bool,
                   fused_ce: bool, offload_checkpoints: bool = False, full: bool = False) -> int:
    """Peak memory of LoRA training, calibrated on the 8B measurements in docs/benchmarks.md (H200: Unsloth
    NF4 + recompute 12.5 GiB measured vs 12.4 estimated; bf16 + recompute 22.2 vs 22.0; without recompute
    the estimate is 7-9% high). full: every weight trains in fp32 (weights, gradients, two Adam moments)."""
    h, layers, vocab = mc["hidden_size"], mc["num_hidden_layers"], mc["vocab_size"]
    projections = layers * sum(i * o for i, o in count_params(mc)[1].values())
    # NF4 + double quant ~0.53 bytes per projection weight; embeddings, lm_head and norms stay 16-bit.
    # fp8: two FP8 copies of each projection (forward, input gradient) = the bf16 size.
    per_proj = {"4bit": 0.53, "bf16": 2.0, "fp8": 2.0, "fp32": 4.0}[precision]
    weight = per_proj * projections + (4.0 if precision == "fp32" else 2.0) * (params - projections)
    lora = 16 * lora_params                                  # fp32 weights + grads + Adam moments
    if full:
        weight, lora = 0, 16 * params
    tokens = micro * seq
    layer_work = tokens * h * 32                             # one layer's activations while it runs
    checkpoints = 0 if offload_checkpoints else tokens * layers * h * 2
    act = (checkpoints + layer_work) if gc else layers * layer_work
    logits = 0 if fused_ce else tokens * vocab * 4 * 2       # fp32 logits + their gradient
    return int(weight + lora + act + logits + 1.0 * GiB)


# ---------------------------------------------------------------------------------------- plan
def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass
class _Choice:
    """What the choices below decide, and why (each adds its reason and any problem)."""
    reasons: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _budget(t, device: Device, c: _Choice) -> float:
    """Bytes the plan may use: 85% of free memory, or train.max_memory_gib when that is smaller."""
    budget = COMFORT * device.free_bytes
    if t.max_memory_gib is not None:
        if t.max_memory_gib * GiB > budget:
            c.reasons.append(f"train.max_memory_gib {t.max_memory_gib:g} is above 85% of the free memory: the plan "
                             f"keeps to {budget / GiB:.1f} GiB")
        else:
            budget = t.max_memory_gib * GiB
            c.reasons.append(f"memory budget {t.max_memory_gib:g} GiB (train.max_memory_gib)")
    return budget


def _check_full(t, c: _Choice) -> None:
    """Full fine-tuning trains fp32 weights on the trl backend: no 4-bit or FP8 base, no Unsloth."""
    if t.precision in ("4bit", "fp8"):
        c.problems.append(f"train.precision {t.precision} keeps a frozen quantized base, which full fine-tuning does "
                          "not have: use auto, bf16 or fp32 with train.method full, or train.method lora")
    if t.backend == "unsloth":
        c.problems.append("train.method full runs on the trl backend: set train.backend trl or auto")
    c.reasons.append("method full: every weight trains (fp32 weights and Adam moments"
                     + (", bf16 autocast" if t.precision in ("auto", "bf16") else "") + "); the run writes model/, "
                     "not an adapter")


def _choose_precision(t, mc: dict, params: int, lora_params: int, seq: int, device: Device, budget: float,
                      liger: bool, fp8: tuple[bool, str], c: _Choice, full: bool = False) -> str:
    """Memory decides 16-bit vs 4-bit; FP8 tensor cores decide FP8 vs bf16 (CPU: bf16 units or fp32). Full
    fine-tuning has no quantized base: bf16 autocast where the device has it, else fp32."""
    fp8_ok, fp8_why = fp8
    if full and t.precision == "auto":
        precision = "bf16" if device.bf16 else "fp32"
        c.reasons.append(f"precision auto -> {precision} (full fine-tuning: fp32 weights"
                         + (", bf16 autocast)" if precision == "bf16" else ")"))
        return precision
    if t.precision != "auto":
        if t.precision == "bf16" and not device.bf16:
            c.problems.append(f"train.precision: bf16 is not supported on {device.name}; use fp32 or auto")
        if t.precision == "fp8":
            (c.reasons if fp8_ok else c.problems).append(fp8_why)
        return t.precision
    if device.kind != "cuda":
        precision = "bf16" if device.bf16 else "fp32"
        c.reasons.append(f"precision auto -> {precision} on CPU "
                         f"({'AVX512-BF16/AMX present' if device.bf16 else 'no bf16 units'})")
        return precision
    est = estimate_bytes(mc, params, lora_params, "bf16", 1, seq, True, liger or t.backend == "unsloth",
                         t.backend == "unsloth")
    precision = "4bit" if est > budget else "fp8" if fp8_ok and t.backend != "unsloth" else "bf16"
    c.reasons.append(f"precision auto -> {precision}: bf16 weights + LoRA at micro-batch 1 with checkpointing need "
                     f"~{est / GiB:.1f} GiB of {budget / GiB:.1f} GiB usable"
                     + (f"; FP8 tensor cores: frozen base GEMMs in FP8 ({FIGURES['train_fp8_vs_anchor']}; "
                        f"{FIGURES['train_fp8_quality']}: train.precision=bf16 for bf16 numerics)"
                        if precision == "fp8" else ""))
    return precision


def _choose_backend(t, precision: str, cuda: bool, c: _Choice) -> str:
    """Unsloth for 4-bit on CUDA (its NF4 kernels); our TRL stack otherwise (varlen packing, FP8, fused LoRA)."""
    backend = t.backend
    if backend == "auto":
        if cuda and precision == "4bit" and t.method == "lora" and _has("unsloth"):
            backend = "unsloth"
            c.reasons.append(f"backend auto -> unsloth: its NF4 kernels ({FIGURES['train_unsloth_qlora']})")
        else:
            backend = "trl"
            c.reasons.append("backend auto -> trl: " + (
                "full fine-tuning" if t.method == "full" else
                "unsloth needs CUDA" if not cuda else
                "unsloth not installed" if precision == "4bit" else
                f"16-bit LoRA with varlen packing and fused LoRA GEMMs ({FIGURES['train_packed_bf16']})"))
    elif backend == "unsloth" and not cuda:
        c.problems.append("train.backend: unsloth needs a CUDA GPU; use trl (or auto) on this machine")
    elif backend == "unsloth" and not _has("unsloth"):
        c.problems.append("train.backend: unsloth is not installed (pip install -r requirements-gpu.txt)")
    if precision == "4bit" and not _has("bitsandbytes"):
        c.problems.append("train.precision: 4bit needs bitsandbytes (pip install bitsandbytes)")
    if precision == "fp8" and backend == "unsloth":
        c.problems.append("train.precision fp8 runs on the trl backend (Unsloth keeps its own weights): set "
                          "train.backend trl or auto")
    return backend


def _choose_packing(t, cuda: bool, backend: str, seq: int, c: _Choice) -> tuple[bool, str]:
    """(packing on?, attention implementation). Padding-free packing flattens a micro-batch into one sequence
    whose position ids restart per row; attention must then run per row: flash_attn's varlen kernel or torch's
    own varlen FlashAttention (kernels/varlen_attention.py). On CPU packing stays off: per-row SDPA is exact but packed
    micro-batches hold many more rows, so the CPU configs' step counts would change meaning."""
    has_flash = _has("flash_attn")
    packing = t.packing and cuda and (has_flash or varlen_attention.available_on_cuda())
    if t.packing and not packing:
        c.reasons.append("packing off: " + ("padding-free packing runs on CUDA only; batches are padded to their "
                                            "longest row" if not cuda else "no varlen attention (flash_attn or "
                                            "torch >= 2.10); batches are padded to their longest row"))
    if not packing:
        return False, "sdpa"
    attention = "unsloth" if backend == "unsloth" else "flash_attention_2" if has_flash else varlen_attention.NAME
    kernel = {"unsloth": "Unsloth's packed attention", "flash_attention_2": "flash_attn"}.get(
        attention, "torch varlen FlashAttention")
    c.reasons.append(f"packing on: rows packed into {seq}-token sequences, attention per row by {kernel} "
                     f"({FIGURES['train_packing']})")
    return True, attention


def _choose_batch(t, fits, cuda: bool, world: int, c: _Choice, device: Device, precision: str, seq: int):
    """(micro-batch, gradient checkpointing, estimate, grad accumulation): the biggest micro-batch dividing the
    per-process batch that fits, preferring no recompute (~25% faster when the memory is there)."""
    gc_choice = {"on": [True], "off": [False], "auto": [False, True]}[t.gradient_checkpointing]
    if t.batch_size % world:
        c.problems.append(f"train.batch_size {t.batch_size} does not split over {world} processes: use a multiple "
                          f"of {world}")
    per_rank = max(1, t.batch_size // world)
    # On a CPU (no padding-free packing there) a micro-batch of one row has no padding at all: the bundled rows run
    # from ~200 to ~1000 tokens, and 4-row micro-batches padded to their longest spent 1.43x the time per step
    # (47.8 vs 33.5 s on the 2-core CPU, configs/smollm2-cpu.yaml); one row of a few hundred tokens still makes
    # matrix products big enough for the cores.
    candidates = [t.micro_batch_size] if t.micro_batch_size else \
        [m for m in (16, 8, 4, 2, 1) if per_rank % m == 0] if cuda else [1]
    chosen = next(((m, gc, est) for gc in gc_choice for m in candidates for ok, est in [fits(m, gc)] if ok), None)
    if not chosen:
        m = candidates[-1] if candidates else 1
        est = fits(m, gc_choice[-1])[1]
        c.problems.append(f"does not fit: {precision} at micro-batch {m}, seq {seq} needs ~{est / GiB:.1f} GiB, "
                          f"{device.name} has {device.free_bytes / GiB:.1f} GiB free, {fits.budget / GiB:.1f} GiB "
                          f"usable (try precision 4bit, a smaller data.max_seq_len, gradient_checkpointing on"
                          f"{', or a larger train.max_memory_gib' if t.max_memory_gib is not None else ''}"
                          f"{'; full fine-tuning keeps 16 bytes per weight: train.method lora needs far less' if t.method == 'full' else ''})")
        chosen = (m, True, est)
    micro, gc, est = chosen
    if t.gradient_checkpointing == "auto":
        c.reasons.append(f"gradient checkpointing auto -> {'on' if gc else 'off'}")
    grad_accum = max(1, per_rank // micro) * t.grad_accum
    if world > 1:
        c.reasons.append(f"DDP over {world} processes: {micro} x {grad_accum} rows each, "
                         f"{micro * grad_accum * world} rows per optimizer step in all")
    return micro, gc, est, grad_accum


def make_plan(cfg: RunConfig, model_path: Path, device: Device | None = None) -> Plan:
    """Every choice of the run, from the config, the model's config.json and the device; ConfigError if none fits."""
    t = cfg.train
    mc = read_model_config(model_path)
    device = device or detect_device()
    c = _Choice()
    if mc.get("model_type") not in (None, "llama", "mistral", "qwen2", "qwen3"):
        c.reasons.append(f"model_type {mc.get('model_type')}: estimates assume a Llama-style decoder")
    params, shapes = count_params(mc)
    full = t.method == "full"
    lora_params = params if full else mc["num_hidden_layers"] * sum(
        t.lora.r * (i + o) for name, (i, o) in shapes.items() if name in t.lora.target_modules)
    unknown = [m for m in t.lora.target_modules if m not in shapes]
    if full:
        _check_full(t, c)
    elif unknown:
        c.problems.append(f"train.lora.target_modules: {', '.join(unknown)} not in a Llama-style block "
                          f"({', '.join(shapes)})")
    cuda = device.kind == "cuda"
    liger = t.liger and cuda and _has("liger_kernel")
    if t.liger and cuda and not liger:
        c.reasons.append("liger requested but liger-kernel is not installed: off")
    seq = cfg.data.max_seq_len
    budget = _budget(t, device, c)
    precision = _choose_precision(t, mc, params, lora_params, seq, device, budget, liger,
                                  fp8_supported(device), c, full)
    backend = _choose_backend(t, precision, cuda, c)
    packing, attention = _choose_packing(t, cuda, backend, seq, c)
    fused_ce = liger or backend == "unsloth"
    offload = backend == "unsloth"   # Unsloth's checkpointing keeps layer inputs in CPU memory, not on the GPU

    def fits(micro: int, gc: bool) -> tuple[bool, int]:
        est = estimate_bytes(mc, params, lora_params, precision, micro, seq, gc, fused_ce, offload and gc, full)
        return est <= budget, est
    fits.budget = budget
    # under torchrun every process takes batch_size / world rows per optimizer step; with several GPUs visible
    # and no torchrun around it, the train command launches one process per GPU itself (stage.py)
    world = envs.integer("WORLD_SIZE")
    if cuda and device.count > 1 and not envs.is_set("WORLD_SIZE"):
        world = device.count
        c.reasons.append(f"{device.count} GPUs visible: the train command runs torchrun with {device.count} processes "
                         "(DDP); set the job's GPUs (or CUDA_VISIBLE_DEVICES) to use fewer")
    micro, gc, est, grad_accum = _choose_batch(t, fits, cuda, world, c, device, precision, seq)
    nf4_fp8 = precision == "4bit" and backend == "unsloth" and cuda and fp8_supported(device)[0]
    if nf4_fp8 and not t.qlora_fp8:
        nf4_fp8 = False
        c.reasons.append("train.qlora_fp8 false: Unsloth's bf16 products throughout")
    elif nf4_fp8:
        c.reasons.append("4bit on FP8 tensor cores: the NF4 weights stay in memory, decoded straight to FP8 for "
                         "the frozen GEMMs of forward, recompute and the input gradients "
                         f"({FIGURES['train_nf4_fp8']}; train.qlora_fp8=false for Unsloth's bf16 products)")
    if c.problems:
        raise ConfigError(c.problems, f"training plan for '{cfg.name}'")
    # fused LoRA takes PEFT's lora.Linear; its 4-bit layers (lora.bnb.Linear4bit) keep PEFT's own forward
    options = KernelOptions(fp8_base=precision == "fp8" and not full,
                            fused_lora=cuda and not full and backend == "trl" and precision != "4bit",
                            qlora_fp8=nf4_fp8)
    return Plan(backend, precision, micro, grad_accum, gc, liger, packing, device, params, lora_params, est, c.reasons,
                world, attention, t.method, options)
