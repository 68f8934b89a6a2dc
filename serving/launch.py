"""Start, watch and stop N independent vLLM replicas behind vllm-router: one OpenAI endpoint.

    python -m serving up --model .sqlgenie/runs/smollm2-cpu/export/merged --replicas 2   # prints the plan
    python -m serving status
    python -m serving down

One replica per GPU (CUDA_VISIBLE_DEVICES) or, on CPU, one per core (VLLM_CPU_OMP_THREADS_BIND), each
with the reference flags (--served-model-name, --port, --kv-cache-dtype, --enable-prefix-caching,
--max-model-len, --gpu-memory-utilization, --dtype, --quantization, --enable-lora for adapters). The
per-GPU defaults are computed from the device and the model (`plan()` says why for each): FP8 weights
and KV cache on Ada/Hopper, NVFP4 checkpoints on Blackwell, fp16 on pre-bf16 cards, max-model-len
from the memory left after the weights. Each replica gets its own session (so a stop kills its whole
process group), a log file, readiness by /health + /v1/models, and a few warm-up requests. A replica
that dies while starting raises ServeError with its log tail and the likely cause (OOM, port taken,
bad model path). vllm-router is then started in front (policy round_robin by default, retries,
circuit breaker, health checks, Prometheus port); remote replicas join as extra worker URLs.
State goes to <home>/serve/<name>/state.json so `status`/`down` and the dashboard find it later.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import requests

from pipeline.config import REPO_ROOT, home, opt
from pipeline.errors import SqlgenieError
from pipeline.procs import alive, log_tail, stop_groups

SERVE_VENV = REPO_ROOT / ".venv-serve" / "bin"


class ServeError(SqlgenieError):
    """A replica or the router could not be started, or is not running."""


@dataclass
class ServeConfig:
    model: str = opt("embedded:smollm2-135m-instruct", "Model folder (merged/quantized export) or embedded:<name>.")
    name: str = opt("sqlgenie", "Served model name (what clients put in `model`) and the state folder name.")
    replicas: int = opt(1, "vLLM replicas on this machine: one per GPU, or one per CPU core.")
    gpus: list[int] = opt([], "GPU indices to use (default: the first `replicas` GPUs).")
    workers: list[str] = opt([], "Extra replica URLs on other hosts (http://host:port) the router also balances.")
    host: str = opt("127.0.0.1", "Address the router binds (replicas always bind 127.0.0.1).")
    router_port: int = opt(8000, "The OpenAI endpoint clients use.")
    base_port: int = opt(8100, "First replica port (replica i gets base_port + i).")
    metrics_port: int = opt(29000, "vllm-router's Prometheus port.")
    policy: str = opt("round_robin", "round_robin | power_of_two | cache_aware | random | consistent_hash.")
    max_model_len: Optional[int] = opt(None, "Context length; None: the model's, capped by the memory left for KV cache.")
    gpu_memory_utilization: float = opt(0.90, "Share of each GPU's memory vLLM may use.")
    dtype: str = opt("auto", "auto: bfloat16 where the device has it (fp16 on pre-Ampere GPUs).")
    quantization: str = opt("auto", "auto: fp8 on Ada/Hopper for unquantized checkpoints; 'none' to serve as is.")
    kv_cache_dtype: str = opt("auto", "auto: fp8 on GPUs with FP8 (halves KV memory), the model dtype elsewhere.")
    prefix_caching: bool = opt(True, "--enable-prefix-caching (the schema prompt repeats across questions).")
    lora_adapters: list[str] = opt([], "name=path adapters served with --enable-lora (no merge needed).")
    max_lora_rank: int = opt(16, "--max-lora-rank when adapters are served.")
    cpu_kv_cache_gib: int = opt(1, "CPU replicas: VLLM_CPU_KVCACHE_SPACE per replica (whole GiB).")
    cpu_stream_interval: int = opt(8, "CPU replicas: stream tokens this many at a time (--stream-interval); "
                                      "fewer events for the API server on a core it shares with the model.")
    gpu_api_servers: int = opt(0, "GPU replicas: API server processes in front of each engine (--api-server-count); "
                                  "0: up to 4, two CPU cores each. One Python server tops out near 10.8k tok/s "
                                  "at 256 concurrent on an H200; four gave 17.6k.")
    gpu_stream_interval: int = opt(4, "GPU replicas: stream tokens this many at a time (--stream-interval); the "
                                      "first token is sent at once.")
    warmup_requests: int = opt(3, "Requests sent to each replica before it counts as ready.")
    start_timeout_s: int = opt(600, "Give up on a replica that is not healthy after this long.")
    extra_args: list[str] = opt([], "More vLLM flags, verbatim (e.g. --max-num-seqs 64).")


@dataclass
class Replica:
    index: int
    port: int
    device: str  # "cuda:0" | "cpu:1"
    args: list[str]
    env: dict[str, str]
    reasons: list[str] = field(default_factory=list)
    pid: Optional[int] = None
    log: str = ""
    cpus: list[int] = field(default_factory=list)   # CPU affinity of the whole replica (empty: not pinned)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ------------------------------------------------------------------------------------------- plan
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


def _model_facts(model_dir: Path) -> dict:
    cfg = json.loads((model_dir / "config.json").read_text())
    text = cfg.get("text_config", cfg)
    weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    if not weights:  # config-only folder (vLLM --load-format dummy): bf16 size from the shapes
        from pipeline.train.plan import count_params

        weights = 2 * count_params(text)[0]
    heads = text["num_attention_heads"]
    head_dim = text.get("head_dim") or text["hidden_size"] // heads
    return {"quantized": "quantization_config" in cfg,
            "quant_method": (cfg.get("quantization_config") or {}).get("format") or
                            (cfg.get("quantization_config") or {}).get("quant_method"),
            "weights_gib": weights / 2**30, "max_len": text.get("max_position_embeddings", 4096),
            "kv_bytes_per_token": 2 * text["num_hidden_layers"] * text.get("num_key_value_heads", heads) * head_dim}


def device_defaults(gpu: dict | None, facts: dict, cfg: ServeConfig, gpus_used: int = 1) -> tuple[list[str], list[str]]:
    """The per-architecture flags of the reference design, computed, with the reason for each."""
    args, why = [], []
    if gpu is None:
        dtype = "bfloat16" if cfg.dtype == "auto" else cfg.dtype
        args += ["--dtype", dtype]
        why.append(f"CPU: dtype {dtype}; KV cache in the model dtype (vLLM CPU has no fp8 KV cache)")
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
    if quant == "auto":
        if facts["quantized"]:
            quant = "none"
            why.append(f"checkpoint is already quantized ({facts['quant_method']}): served as is")
        elif fp8_hw:
            quant = "fp8"
            why.append("FP8 tensor cores: --quantization fp8 (weights cast at load, ~1.3-1.4x decode)")
        else:
            quant = "none"
            why.append("no FP8 tensor cores: unquantized (export w4a16 for 4-bit on this GPU)")
    if quant not in ("none", ""):
        args += ["--quantization", quant]
    kv = cfg.kv_cache_dtype if cfg.kv_cache_dtype != "auto" else ("fp8" if fp8_hw else "auto")
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
    servers = cfg.gpu_api_servers or max(1, min(4, (os.cpu_count() or 2) // (2 * max(1, gpus_used))))
    args += ["--api-server-count", str(servers), "--stream-interval", str(cfg.gpu_stream_interval)]
    why.append(f"--api-server-count {servers}, --stream-interval {cfg.gpu_stream_interval}: the HTTP side keeps up "
               f"with the GPU at high concurrency")
    return args, why


def plan(cfg: ServeConfig) -> list[Replica]:
    from pipeline import assets

    model_dir = assets.resolve(cfg.model)
    if not (model_dir / "config.json").is_file():
        raise ServeError(f"model {cfg.model}: {model_dir} has no config.json (export a merged model first, or "
                         "give a model folder)")
    if cfg.replicas < 1 and not cfg.workers:
        raise ServeError("replicas: at least one replica (or a remote worker URL) is needed")
    for knob, least in (("gpu_api_servers", 0), ("gpu_stream_interval", 1), ("cpu_stream_interval", 1)):
        if getattr(cfg, knob) < least:
            raise ServeError(f"{knob}: {getattr(cfg, knob)} must be >= {least}"
                             + (" (0: chosen from the CPU cores)" if knob == "gpu_api_servers" else ""))
    facts = _model_facts(model_dir)
    gpus = gpu_inventory()
    chosen = [g for g in gpus if not cfg.gpus or g["index"] in cfg.gpus][: cfg.replicas]
    if gpus and len(chosen) < cfg.replicas:
        raise ServeError(f"replicas={cfg.replicas} but only {len(chosen)} GPU(s) available "
                         f"({', '.join(g['name'] for g in gpus)}): one replica per GPU")
    cores = os.cpu_count() or 1
    if not gpus and cfg.replicas > cores:
        raise ServeError(f"replicas={cfg.replicas} but this machine has {cores} CPU cores: one replica per core")
    out = []
    for i in range(cfg.replicas):
        gpu = chosen[i] if gpus else None
        args, why = device_defaults(gpu, facts, cfg, len(chosen))
        args = ["--model", str(model_dir), "--served-model-name", cfg.name, "--host", "127.0.0.1",
                "--port", str(cfg.base_port + i), *args]
        if cfg.prefix_caching:
            args.append("--enable-prefix-caching")
        if cfg.lora_adapters:
            args += ["--enable-lora", "--max-lora-rank", str(cfg.max_lora_rank), "--lora-modules", *cfg.lora_adapters]
        env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cpus = []
        if gpu is None:
            core = i % cores
            # The worker runs inside the engine process (no second process that spins on a shared-memory
            # queue while the other computes: measured 2 replicas / 2 cores 0.77x -> 1.55x of one), and
            # tokens stream in groups (fewer SSE events for the API server to write).
            args += ["--enforce-eager", "--distributed-executor-backend", "uni",
                     "--stream-interval", str(cfg.cpu_stream_interval)]
            env.update({"VLLM_CPU_OMP_THREADS_BIND": str(core), "VLLM_CPU_KVCACHE_SPACE": str(cfg.cpu_kv_cache_gib),
                        "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"})
            device = f"cpu:{core}"
            if cfg.replicas == cores:
                cpus = [core]
                why.append(f"pinned whole (API server + engine) to core {core}: one replica per core")
            else:
                why.append(f"compute pinned to core {core} (VLLM_CPU_OMP_THREADS_BIND), API server unpinned")
            why.append(f"tokens stream {cfg.cpu_stream_interval} at a time")
        else:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu["index"])
            device = f"cuda:{gpu['index']}"
        out.append(Replica(i, cfg.base_port + i, device, args + list(cfg.extra_args), env, why, cpus=cpus))
    return out


# ---------------------------------------------------------------------------------------- process
def vllm_python() -> str:
    """The interpreter that has vLLM: SQLGENIE_VLLM_PYTHON, else the serving venv, else this one."""
    if os.environ.get("SQLGENIE_VLLM_PYTHON"):
        return os.environ["SQLGENIE_VLLM_PYTHON"]
    return str(SERVE_VENV / "python") if (SERVE_VENV / "python").exists() else sys.executable


def state_dir(name: str) -> Path:
    return home() / "serve" / name


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def diagnose(log: str) -> str:
    low = log.lower()
    if "out of memory" in low or "cuda error: out of memory" in low or "not enough memory" in low:
        return "out of memory: lower max_model_len or gpu_memory_utilization, or serve a quantized export"
    if "address already in use" in low:
        return "the port is taken: stop what uses it or change base_port/router_port"
    if "no such file" in low or "does not appear to have" in low or "repository not found" in low or "not a valid model" in low:
        return "bad model path: point model at a folder with config.json + safetensors"
    if "max_model_len" in low and ("greater" in low or "larger" in low):
        return "max_model_len is larger than the model or the KV cache allows: lower it"
    return "see the log"


def spawn(cmd: list[str], env: dict[str, str], log_path: Path, cpus: list[int] | None = None) -> subprocess.Popen:
    """A detached child in its own session (its process group dies with `stop`), output to a log;
    with `cpus`, it and everything it starts run on those cores only."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env}, start_new_session=True, cwd=str(REPO_ROOT), preexec_fn=pin)


def kill_group(pid: int | None, grace_s: float = 10.0) -> None:
    """Stop one replica / router / sampler: its whole process group."""
    stop_groups([pid], grace_s)


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return requests.get(url + "/health", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path, what: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log_tail(log_path)
            raise ServeError(f"{what} exited with code {proc.returncode} while starting: {diagnose(tail)}\n"
                             f"--- {log_path} (last lines) ---\n{tail}")
        if healthy(url):
            try:
                if requests.get(url + "/v1/models", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.5)
    raise ServeError(f"{what} not healthy after {timeout_s:.0f} s: {diagnose(log_tail(log_path))}\n"
                     f"--- {log_path} ---\n{log_tail(log_path)}")


def warm_up(url: str, model: str, n: int) -> None:
    for i in range(n):
        requests.post(url + "/v1/completions", json={"model": model, "prompt": f"SELECT {i}", "max_tokens": 4,
                                                     "temperature": 0}, timeout=120).raise_for_status()


def start_replica(r: Replica, cfg: ServeConfig, logs: Path) -> Replica:
    if not port_free(r.port):
        raise ServeError(f"replica {r.index}: port {r.port} is taken: stop what uses it or change base_port")
    log_path = logs / f"replica-{r.index}.log"
    proc = spawn([vllm_python(), "-m", "vllm.entrypoints.openai.api_server", *r.args], r.env, log_path, r.cpus)
    r.pid, r.log = proc.pid, str(log_path)
    try:
        wait_ready(proc, r.url, log_path, f"replica {r.index} ({r.device})", cfg.start_timeout_s)
        warm_up(r.url, cfg.name, cfg.warmup_requests)
    except BaseException:
        kill_group(proc.pid, 5)
        raise
    return r


def router_command(cfg: ServeConfig, urls: list[str]) -> list[str]:
    py = os.environ.get("SQLGENIE_ROUTER_PYTHON") or vllm_python()
    return [py, "-m", "vllm_router.launch_router", "--host", cfg.host, "--port", str(cfg.router_port),
            "--worker-urls", *urls, "--policy", cfg.policy,
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(cfg.metrics_port),
            # A replica that dies mid-load: its circuit opens after 2 failed sends (open circuits are
            # skipped when picking a worker), so with 5 retries no request can spend all its attempts on
            # it; health checks every 2 s then take it out until it answers again.
            "--retry-max-retries", "5", "--retry-initial-backoff-ms", "50",
            "--health-check-interval-secs", "2", "--health-failure-threshold", "2",
            "--health-success-threshold", "1", "--health-check-endpoint", "/health",
            "--cb-failure-threshold", "2", "--cb-timeout-duration-secs", "5",
            "--worker-startup-timeout-secs", "30", "--log-level", "warning"]


def up(cfg: ServeConfig, progress=print) -> dict:
    """Start every replica (in parallel), then the router; returns and saves the state."""
    from concurrent.futures import ThreadPoolExecutor

    if cfg.host not in ("127.0.0.1", "localhost") and not os.environ.get("SQLGENIE_API_KEY"):
        raise ServeError(f"router host {cfg.host}: binding beyond localhost needs SQLGENIE_API_KEY (clients send it "
                         "as a bearer token)")
    sdir = state_dir(cfg.name)
    if (sdir / "state.json").is_file() and any(alive(p) for p in _pids(json.loads((sdir / "state.json").read_text()))):
        raise ServeError(f"deployment {cfg.name!r} is already running: `python -m serving down --name {cfg.name}` first")
    for port, what in ((cfg.router_port, "router_port"), (cfg.metrics_port, "metrics_port")):
        if not port_free(port):
            raise ServeError(f"{what} {port} is taken: stop what uses it or choose another")
    replicas = plan(cfg)
    for r in replicas:
        progress(f"replica {r.index} on {r.device}, port {r.port}: " + "; ".join(r.reasons))
    logs = sdir / "logs"
    t0 = time.time()
    started: list[Replica] = []
    try:
        with ThreadPoolExecutor(max(1, len(replicas))) as pool:
            futures = [pool.submit(start_replica, r, cfg, logs) for r in replicas]
            errors = []
            for f in futures:
                try:
                    started.append(f.result())
                except ServeError as e:
                    errors.append(str(e))
            if errors:
                raise ServeError("\n".join(errors))
        progress(f"{len(started)} replica(s) ready in {time.time() - t0:.0f} s")
        urls = [r.url for r in started] + list(cfg.workers)
        cmd = router_command(cfg, urls)
        env = {"SQLGENIE_API_KEY": os.environ.get("SQLGENIE_API_KEY", "")}
        if os.environ.get("SQLGENIE_API_KEY"):
            cmd += ["--api-key", os.environ["SQLGENIE_API_KEY"]]
        router_log = logs / "router.log"
        proc = spawn(cmd, env, router_log)
        router = {"pid": proc.pid, "url": f"http://{'127.0.0.1' if cfg.host in ('0.0.0.0', '::') else cfg.host}:{cfg.router_port}",
                  "metrics": f"http://127.0.0.1:{cfg.metrics_port}/metrics", "log": str(router_log), "cmd": cmd}
        wait_ready(proc, router["url"], router_log, "vllm-router", 60)
    except BaseException:
        for r in started:
            kill_group(r.pid, 5)
        raise
    state = {"name": cfg.name, "config": asdict(cfg), "started": time.time(), "router": router,
             "replicas": [asdict(r) for r in started]}
    sdir.mkdir(parents=True, exist_ok=True)
    _save(state)
    sampler = spawn([sys.executable, "-m", "serving.stats", "--name", cfg.name], {}, logs / "stats.log")
    state["sampler_pid"] = sampler.pid
    _save(state)
    progress(f"router {router['url']} ({cfg.policy}) over {len(urls)} replica(s); metrics {router['metrics']}")
    return state


def _save(state: dict) -> None:
    path = state_dir(state["name"]) / "state.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


def _pids(state: dict) -> list[int]:
    return [r["pid"] for r in state.get("replicas", [])] + [state.get("router", {}).get("pid"), state.get("sampler_pid")]


def load_state(name: str = "sqlgenie") -> dict:
    path = state_dir(name) / "state.json"
    if not path.is_file():
        raise ServeError(f"no deployment named {name!r} (start one: python -m serving up)")
    return json.loads(path.read_text())


def status(name: str = "sqlgenie") -> dict:
    state = load_state(name)
    for r in state["replicas"]:
        url = f"http://127.0.0.1:{r['port']}"
        r["alive"], r["healthy"] = alive(r["pid"]), healthy(url, 1.0)
    state["router"]["alive"] = alive(state["router"]["pid"])
    state["router"]["healthy"] = healthy(state["router"]["url"], 1.0)
    return state


def restart_replica(name: str, index: int) -> dict:
    """Start replica `index` again with its saved arguments (after a crash or a stop)."""
    state = load_state(name)
    cfg = ServeConfig(**state["config"])
    r = Replica(**state["replicas"][index])
    if alive(r.pid):
        kill_group(r.pid)
    start_replica(r, cfg, state_dir(name) / "logs")
    state["replicas"][index] = asdict(r)
    _save(state)
    return state


def stop_replica(name: str, index: int) -> None:
    kill_group(load_state(name)["replicas"][index]["pid"])


def down(name: str = "sqlgenie") -> int:
    state = load_state(name)
    n = stop_groups(_pids(state), grace_s=15.0)
    shutil.move(str(state_dir(name) / "state.json"), str(state_dir(name) / "state.stopped.json"))
    return n
