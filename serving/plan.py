"""The per-device plan of a deployment: which replica runs where, with which vLLM flags, and why.

    from serving.plan import plan, served_models
    for r in plan(cfg): print(r.device, r.port, r.reasons)

One replica per GPU (CUDA_VISIBLE_DEVICES) or, on CPU, one per core (VLLM_CPU_OMP_THREADS_BIND), each
with the reference flags (--served-model-name, --port, --kv-cache-dtype, --enable-prefix-caching,
--max-model-len, --gpu-memory-utilization, --dtype, --quantization, --enable-lora for adapters). The
per-GPU defaults are computed from the device and the model: FP8 weights and KV cache on Ada/Hopper for
models of 4 GiB and more (a smaller one is served as is), NVFP4 checkpoints on Blackwell, fp16 on pre-bf16
cards, max-model-len from the memory left after the weights. `served_models` says, per served name, which tokenizer and prompt contract a client must use.
"""
from __future__ import annotations

import json
import os
import random
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from core import assets, envs
from core.cpu import bf16_native, fp8_gemm_ms
from core.measured import FIGURES
from core.modelinfo import count_params, draft_head, read_card, read_model_config, text_config
from core.settings import REPO_ROOT
from serving.config import DeploymentError, ServeConfig
from sql.prompt import PromptContract

# Our vLLM add-ons, on every replica's PYTHONPATH: a general plugin (sqlgenie_vllm_fixes.py: the CPU rejection
# sampler's broken expansion of per-request temperatures) and a middleware (sqlgenie_replica_header.py).
VLLM_PLUGINS = REPO_ROOT / "serving" / "vllm_plugins"
# Below this much bf16 weight (about 2B parameters) FP8 weights and KV cache are not worth their kernels on a
# GPU: reading the weights is a small part of a decode step (SmolLM2-135M on an H200: docs/benchmarks.md).
FP8_MIN_WEIGHTS_GIB = 4.0
# On a CPU without bf16 instructions a model is served in float32 when its bf16 weights are at most this big
# (twice that in float32, per replica).
FP32_CPU_MAX_GIB = 2.0


@dataclass
class Replica:
    index: int
    port: int
    device: str  # "cuda:0" | "cpu:1"
    args: list[str]
    env: dict[str, str]
    reasons: list[str] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)   # CPU affinity of the whole replica (empty: not pinned)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def gpu_inventory() -> list[dict]:
    """[{index, name, capability, total_gib, free_gib}] from NVML; [] without GPUs."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver / no GPU: serve on CPU
        return []
    out = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
        name = pynvml.nvmlDeviceGetName(h)
        out.append({"index": i, "name": name if isinstance(name, str) else name.decode(),
                    "capability": f"{major}.{minor}", "total_gib": mem.total / 2**30, "free_gib": mem.free / 2**30})
    return out


def model_facts(model_dir: Path) -> dict:
    cfg = read_model_config(model_dir)
    text = text_config(cfg)
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    if not weights:  # config-only folder (vLLM --load-format dummy): bf16 size from the shapes
        weights = 2 * count_params(text)[0]
    heads = text["num_attention_heads"]
    head_dim = text.get("head_dim") or text["hidden_size"] // heads
    return {"quantized": "quantization_config" in cfg,
            "quant_method": (cfg.get("quantization_config") or {}).get("format") or
                            (cfg.get("quantization_config") or {}).get("quant_method"),
            "weights_gib": weights / 2**30, "max_len": text.get("max_position_embeddings", 4096),
            "kv_bytes_per_token": 2 * text["num_hidden_layers"] * text.get("num_key_value_heads", heads) * head_dim,
            "draft": draft_head(model_dir)}


def ngram_args(k: int) -> list[str]:
    """vLLM flags for n-gram speculation: k tokens proposed from a 2-4 token match in the prompt."""
    return ["--speculative-config", json.dumps({"method": "ngram", "num_speculative_tokens": k,
                                                "prompt_lookup_min": 2, "prompt_lookup_max": 4})]


GPU_DRAFT_TOKENS = 1     # draft-head tokens per step on GPUs (docs/benchmarks.md: 1 beat 2 at batch 1 and at 64 clients)


def draft_args(draft: dict, k: int) -> list[str]:
    """vLLM flags for EAGLE speculation with the model's own draft head, k tokens per step."""
    return ["--speculative-config", json.dumps({"method": "eagle", "model": str(draft["path"]),
                                                "num_speculative_tokens": k})]


def draft_choice(cfg: ServeConfig, facts: dict, on_gpu: bool) -> tuple[int, str]:
    """(tokens the draft head proposes per step, 0 for none; the reason) for this device."""
    draft, want = facts.get("draft"), cfg.draft_speculation
    if want == 0 or draft is None:
        return 0, ""
    if cfg.ngram_speculation > 0:          # asked for by name (both asked for: ServeConfig.problems refuses it)
        return 0, "ngram_speculation asked for: the model's draft head is not used (vLLM runs one speculation method)"
    rep = draft.get("report") or {}
    # 1 won on an H200 (each further token costs a drafting pass; on unseen schemas too few are accepted to pay)
    k = want if want > 0 else min(GPU_DRAFT_TOKENS, int(rep.get("steps_ahead") or GPU_DRAFT_TOKENS))
    if want < 0 and not on_gpu:
        return 0, ("the model's draft head is not used on CPU by default: it lost to n-gram speculation there "
                   f"({FIGURES['serve_cpu_draft']}); draft_speculation=3 turns it on")
    acc = f"{rep['accepted_per_step']:.2f} draft tokens accepted per step on held-out rows, " \
        if isinstance(rep.get("accepted_per_step"), (int, float)) else ""
    return k, (f"EAGLE draft head {draft['path']} ({acc}trained {rep.get('steps_ahead', '?')} ahead): {k} "
               f"token{'s' if k > 1 else ''} proposed per step, checked in one step of the model ({FIGURES['serve_gpu_draft']}); "
               f"at many concurrent clients: {FIGURES['serve_gpu_draft_load']}; draft_speculation=0 turns it off")


SERVE_VENV = REPO_ROOT / ".venv-serve" / "bin"


def vllm_python() -> str:
    """The interpreter that has vLLM: SQLGENIE_VLLM_PYTHON, else the serving venv, else this one."""
    if envs.text("SQLGENIE_VLLM_PYTHON"):
        return envs.text("SQLGENIE_VLLM_PYTHON")
    return str(SERVE_VENV / "python") if (SERVE_VENV / "python").exists() else sys.executable


FP8_FORMATS = ("float-quantized", "fp8")      # compressed-tensors FP8 (our fp8 export), vLLM's own fp8 checkpoints
FP8_CPU_MAX_MS = 100.0                        # one 16 x 576 x 1536 FP8 product; fp32 takes ~1.4 ms on one core


def cpu_fp8_check(facts: dict) -> str:
    """A checkpoint on a CPU: if it is FP8, refused where torch's FP8 product is far too slow to serve (measured
    here, in the serving interpreter), else the reason it is served as it is; "" for any other checkpoint."""
    if facts["quant_method"] not in FP8_FORMATS:
        return ""
    ms = fp8_gemm_ms(vllm_python())
    if ms is not None and ms > FP8_CPU_MAX_MS:
        raise DeploymentError(
            f"this model is an FP8 export, and on this CPU vLLM's FP8 layers are far too slow to serve: one "
            f"16x576x1536 FP8 product took {ms:.0f} ms in the serving environment (float32 takes ~1.4 ms), about a "
            "token a minute for SmolLM2. FP8 exports are for GPUs with FP8 units (Ada, Hopper, Blackwell); on a CPU "
            "use the merged export (`export.formats=[merged]`) or the run's adapter instead")
    probe = f"{ms:.1f} ms" if ms is not None else "not measurable here"
    return f"FP8 export on a CPU: its products are emulated by torch (one 16x576x1536 product: {probe})"


def device_defaults(gpu: dict | None, facts: dict, cfg: ServeConfig, gpus_used: int = 1) -> tuple[list[str], list[str]]:
    """The per-architecture flags of the reference design, computed, with the reason for each."""
    args, why = [], []
    if gpu is None:
        dtype = cfg.dtype
        if dtype == "auto":
            fp32 = not bf16_native() and facts["weights_gib"] <= FP32_CPU_MAX_GIB
            dtype = "float32" if fp32 else "bfloat16"
            if fp32:
                why.append(f"CPU without bf16 instructions (no AVX512-BF16/AMX): float32, bf16 would be emulated "
                           f"({FIGURES['serve_cpu_fp32']})")
        args += ["--dtype", dtype]
        why.append(f"CPU: dtype {dtype}; KV cache in the model dtype (vLLM CPU has no fp8 KV cache)")
        fp8_why = cpu_fp8_check(facts)
        if fp8_why:
            why.append(fp8_why)
        k_draft, draft_why = draft_choice(cfg, facts, on_gpu=False)
        k = cfg.ngram_speculation if cfg.ngram_speculation >= 0 else (0 if k_draft else 4)
        if draft_why:
            why.append(draft_why)
        if k_draft:
            args += draft_args(facts["draft"], k_draft)
        if k:
            args += ngram_args(k)
            why.append(f"n-gram speculation, {k} tokens from the prompt (SQL copies the schema's names): "
                       f"{FIGURES['serve_cpu_ngram']}")
        if cfg.kv_cache_dtype not in ("auto",):
            args += ["--kv-cache-dtype", cfg.kv_cache_dtype]
        max_len = cfg.max_model_len or min(facts["max_len"], 2048)
        args += ["--max-model-len", str(max_len)]
        return args, why
    major, minor = (int(x) for x in gpu["capability"].split("."))
    fp8_hw = (major, minor) >= (8, 9)
    dtype = cfg.dtype if cfg.dtype != "auto" else ("bfloat16" if major >= 8 else "float16")
    args += ["--dtype", dtype]
    why.append(f"{gpu['name']} (sm{major}{minor}): dtype {dtype}" + ("" if major >= 8 else " (no bf16 before Ampere)"))
    quant = cfg.quantization
    small = not facts["quantized"] and facts["weights_gib"] < FP8_MIN_WEIGHTS_GIB
    if quant == "auto":
        if facts["quantized"]:
            quant = "none"
            why.append(f"checkpoint is already quantized ({facts['quant_method']}): served as is")
        elif fp8_hw and small:
            quant = "none"
            why.append(f"small model ({facts['weights_gib']:.2f} GiB of weights < {FP8_MIN_WEIGHTS_GIB:g}): a decode step is "
                       f"bound by per-step overhead, not weight reads, so FP8 only adds quantize kernels: served as is "
                       f"({FIGURES['serve_fp8_small']})")
        elif fp8_hw:
            quant = "fp8"
            why.append(f"FP8 tensor cores: --quantization fp8 (weights cast at load; {FIGURES['serve_fp8_decode']})")
        else:
            quant = "none"
            why.append("no FP8 tensor cores: unquantized (export w4a16 for 4-bit on this GPU)")
    if quant not in ("none", ""):
        args += ["--quantization", quant]
    kv = cfg.kv_cache_dtype if cfg.kv_cache_dtype != "auto" else ("fp8" if fp8_hw and not small else "auto")
    if kv != "auto":
        args += ["--kv-cache-dtype", kv]
        why.append(f"--kv-cache-dtype {kv}: twice the tokens in the same KV memory")
    weights = facts["weights_gib"] * (0.5 if quant == "fp8" else 1.0)
    budget = gpu["total_gib"] * cfg.gpu_memory_utilization - weights - 2.0  # ~2 GiB activations / graphs
    kv_bytes = facts["kv_bytes_per_token"] * (1 if kv == "fp8" else 2)
    fits = int(budget * 2**30 / kv_bytes) if budget > 0 else 0
    max_len = cfg.max_model_len or max(256, min(facts["max_len"], fits))
    if cfg.max_model_len is None:
        why.append(f"--max-model-len {max_len}: the model's {facts['max_len']} capped by the {max(budget, 0):.0f} GiB "
                   f"left for KV cache ({fits:,} tokens)")
    args += ["--max-model-len", str(max_len), "--gpu-memory-utilization", str(cfg.gpu_memory_utilization)]
    # The API server (HTTP, detokenized SSE per stream) is one Python process: at 256 concurrent streams on
    # an H200 it, not the GPU, was the limit. More servers per engine and tokens streamed in groups of 4
    # took one replica from 10.8k to 17.6k tok/s (bench/serving_sweep.py, docs/benchmarks.md).
    k_draft, draft_why = draft_choice(cfg, facts, on_gpu=True)
    if draft_why:
        why.append(draft_why)
    if k_draft:
        args += draft_args(facts["draft"], k_draft)
    elif cfg.ngram_speculation > 0:
        args += ngram_args(cfg.ngram_speculation)
    elif cfg.ngram_speculation < 0:
        why.append(f"no n-gram speculation on a GPU ({FIGURES['serve_gpu_ngram']})")
    full, full_why = full_graphs_choice(cfg)
    if full:
        args += ["--compilation-config", json.dumps({"cudagraph_mode": "FULL"})]
    if full_why:
        why.append(full_why)
    servers = cfg.gpu_api_servers or max(1, min(4, (os.cpu_count() or 2) // (2 * max(1, gpus_used))))
    args += ["--api-server-count", str(servers), "--stream-interval", str(cfg.gpu_stream_interval)]
    why.append(f"--api-server-count {servers}, --stream-interval {cfg.gpu_stream_interval}: the HTTP side keeps up "
               f"with the GPU at high concurrency")
    return args, why


COMPILATION_FLAGS = ("--compilation-config", "-cc", "-O")   # vLLM's own compilation flags (also dotted: -cc.key=v)


def full_graphs_choice(cfg: ServeConfig) -> tuple[bool, str]:
    """Whether every batch (a prefill too) runs as one CUDA graph, and why. Asked for only (gpu_full_graphs): the
    first token comes sooner, but greedy answers change; never over the user's own compilation flags."""
    if not cfg.gpu_full_graphs:
        return False, ""
    own = [a for a in cfg.extra_args if a.startswith(COMPILATION_FLAGS)]
    if own:
        return False, f"gpu_full_graphs is on but extra_args set the compilation ({own[0]}): those are used"
    return True, ("gpu_full_graphs: every batch as one CUDA graph, a new question's prefill too (--compilation-config "
                  f"cudagraph_mode FULL): {FIGURES['serve_full_graphs']}")


def plan(cfg: ServeConfig) -> list[Replica]:
    """One Replica per GPU (or CPU core) with its flags, environment and the reason for each flag."""
    model_dir = assets.resolve(cfg.model)
    if not (model_dir / "config.json").is_file():
        raise DeploymentError(f"model {cfg.model}: {model_dir} has no config.json (export a merged model first, or "
                              "give a model folder)")
    bad = cfg.problems()
    if bad:
        raise DeploymentError("; ".join(bad))
    facts = model_facts(model_dir)
    gpus = gpu_inventory()
    chosen = [g for g in gpus if not cfg.gpus or g["index"] in cfg.gpus][: cfg.replicas]
    if gpus and len(chosen) < cfg.replicas:
        raise DeploymentError(f"replicas={cfg.replicas} but only {len(chosen)} GPU(s) available "
                              f"({', '.join(g['name'] for g in gpus)}): one replica per GPU")
    cores = os.cpu_count() or 1
    if not gpus and cfg.replicas > cores:
        raise DeploymentError(f"replicas={cfg.replicas} but this machine has {cores} CPU cores: one replica per core")
    ports = [cfg.base_port + i for i in range(cfg.replicas)] if cfg.base_port else free_ports(cfg.replicas)
    adapters = cfg.adapters()
    lora_rank = cfg.max_lora_rank or max([adapter_rank(Path(p)) for p in adapters.values()] or [16])
    out = []
    for i in range(cfg.replicas):
        gpu = chosen[i] if gpus else None
        args, why = device_defaults(gpu, facts, cfg, len(chosen))
        args = ["--model", str(model_dir), "--served-model-name", cfg.name, "--host", "127.0.0.1",
                "--port", str(ports[i]), *args]
        if cfg.prefix_caching:
            args.append("--enable-prefix-caching")
        if adapters:
            args += ["--enable-lora", "--max-lora-rank", str(lora_rank), "--max-loras", str(max(1, len(adapters))),
                     "--lora-modules", *[f"{n}={Path(p).expanduser().resolve()}" for n, p in adapters.items()]]
            why.append(f"LoRA: {', '.join(adapters)} served beside the base model (rank <= {lora_rank})"
                       + ("; " + FIGURES["serve_cpu_lora"] if gpu is None else ""))
        env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cpus = []
        if gpu is None:
            core = i % cores
            # The worker runs inside the engine process (no second process that spins on a shared-memory
            # queue while the other computes), and tokens stream in groups (fewer SSE events to write).
            args += ["--enforce-eager", "--distributed-executor-backend", "uni",
                     "--stream-interval", str(cfg.cpu_stream_interval)]
            env.update({"VLLM_CPU_OMP_THREADS_BIND": str(core), "VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kv_cache_gib),
                        "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"})
            if "--speculative-config" in args:
                why.append("speculative decoding on vLLM CPU 0.32 needs our fix of its rejection sampler "
                           "(serving/vllm_plugins: per-request temperatures were expanded into uninitialised memory, "
                           "so a sampled request, e.g. a vote, broke constrained answers with HTTP 500 and corrupted "
                           "greedy ones batched with it): loaded as a vLLM plugin")
            device = f"cpu:{core}"
            if cfg.replicas == cores:
                cpus = [core]
                why.append(f"pinned whole (API server + engine) to core {core}: one replica per core "
                           f"({FIGURES['serve_cpu_worker_inline']})")
            else:
                why.append(f"compute pinned to core {core} (VLLM_CPU_OMP_THREADS_BIND), API server unpinned: the other "
                           "cores serve HTTP and the client (vLLM CPU's own default reserves one core the same way)")
            why.append(f"tokens stream {cfg.cpu_stream_interval} at a time")
        else:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu["index"])
            device = f"cuda:{gpu['index']}"
        # our vLLM plugins (serving/vllm_plugins): the CPU fix, and the header that names the replica in every answer
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(VLLM_PLUGINS), os.environ.get("PYTHONPATH", "")) if p)
        env["SQLGENIE_REPLICA"] = f"{i}@{device}"
        args += ["--middleware", "sqlgenie_replica_header.ReplicaHeader"]
        out.append(Replica(i, ports[i], device, args + list(cfg.extra_args), env, why, cpus))
    return out


def adapter_rank(adapter_dir: Path) -> int:
    try:
        return int(json.loads((Path(adapter_dir).expanduser() / "adapter_config.json").read_text()).get("r", 16))
    except (OSError, ValueError):
        return 16


def served_models(cfg: ServeConfig) -> dict[str, dict]:
    """{served name: {kind, path, tokenizer, contract, base}}: what a client needs to prompt each served model
    exactly as it was trained (its tokenizer folder and the prompt contract from its model card)."""
    model_dir = assets.resolve(cfg.model)
    card = read_card(model_dir)
    kind = "full fine-tune" if card.get("kind") == "full-model" else "merged" if card else "base"
    out = {cfg.name: {"kind": kind, "path": str(model_dir), "tokenizer": str(model_dir),
                      "contract": PromptContract.from_card(card).to_dict(), "card": bool(card), "base": None,
                      "run": card.get("run")}}
    for name, path in cfg.adapters().items():
        ad = Path(path).expanduser().resolve()
        acard = read_card(ad)
        tok = ad if (ad / "tokenizer_config.json").is_file() else model_dir
        out[name] = {"kind": "lora", "path": str(ad), "tokenizer": str(tok),
                     "contract": PromptContract.from_card(acard).to_dict(), "card": bool(acard), "base": cfg.name,
                     "run": acard.get("run")}
    return out


EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
QUIET_PORTS = (20000, 32768)   # below Linux's default ephemeral range: no bind(0) or connect() is handed these


def free_ports(n: int, avoid: set[int] = frozenset(), ephemeral_range: str = EPHEMERAL_RANGE) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now, none in `avoid`. Taken below the kernel's ephemeral range
    where it leaves room: a port the OS hands out on its own (any process's bind to port 0, e.g. vLLM's internal
    sockets while a replica starts) could otherwise take one between this pick and the bind that uses it (a
    router's metrics port was lost that way in a test run)."""
    try:
        low = int(Path(ephemeral_range).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    lo, hi = QUIET_PORTS[0], min(QUIET_PORTS[1], low)
    ports: list[int] = []
    if hi - lo >= 1000:
        for port in random.sample(range(lo, hi), min(hi - lo, 50 * n + 200)):
            if port not in avoid and port_free(port):
                ports.append(port)
                if len(ports) == n:
                    return ports
    socks = []   # no quiet range here: ports the OS picks (distinct while all are held)
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
