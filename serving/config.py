"""What a deployment is asked to be (ServeConfig) and the launcher's error (DeploymentError).

    from serving.config import ServeConfig, DeploymentError, load_serve_config
    cfg = load_serve_config("serve.yaml", ["replicas=2", "lora_adapters=[ft=/runs/x/adapter]"])
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from core.errors import ConfigError, SqlgenieError
from core.measured import FIGURES
from core.settings import build, opt, read_config, with_overrides

NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class DeploymentError(SqlgenieError):
    """A deployment (replicas + router) cannot be started, reached or stopped: the line says which part and why."""


@dataclass
class ServeConfig:
    model: str = opt("embedded:smollm2-135m-instruct", "Model folder (merged/quantized export) or embedded:<name>.")
    name: str = opt("sqlgenie", "Deployment name: the served base model's name (what clients put in `model`) and "
                                "the state folder under <home>/serve.")
    replicas: int = opt(1, "vLLM replicas on this machine: one per GPU, or one per CPU core.", ge=0)
    gpus: list[int] = opt([], "GPU indices to use (default: the first `replicas` GPUs).")
    workers: list[str] = opt([], "Extra replica URLs on other hosts (http://host:port, started there with "
                                 "`sqlgenie serve replica`) the router also balances.")
    host: str = opt("127.0.0.1", "Address clients reach the deployment on (replicas bind 127.0.0.1 unless started "
                                 "as remote replicas). With SQLGENIE_TOKEN set, the router listens on 127.0.0.1 "
                                 "and a gate that asks for the token takes this address (serving/gate.py).")
    router_port: int = opt(8000, "The OpenAI endpoint clients use (0: a free port).", ge=0, le=65535)
    base_port: int = opt(8100, "First replica port (replica i gets base_port + i; 0: free ports).", ge=0, le=65535)
    metrics_port: int = opt(29000, "vllm-router's Prometheus port (0: a free port).", ge=0, le=65535)
    policy: Literal["round_robin", "power_of_two", "cache_aware", "random", "consistent_hash"] = opt(
        "round_robin", "How vllm-router picks a replica for each request.")
    max_model_len: Optional[int] = opt(None, "Context length; None: the model's, capped by the memory left for KV cache.",
                                       ge=64)
    gpu_memory_utilization: float = opt(0.90, "Share of each GPU's memory vLLM may use.", gt=0, le=1)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = opt("auto", "auto: bfloat16 where the device has it (fp16 on pre-Ampere GPUs).")
    quantization: Literal["auto", "none", "fp8"] = opt("auto", "auto: fp8 on Ada/Hopper for unquantized checkpoints of 4 GiB and more (a smaller "
                                    "model is faster and keeps its answers in bf16); 'none' to serve as is.")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = opt("auto", "auto: fp8 on GPUs with FP8 (halves KV memory) for models of 4 GiB and more, "
                                      "the model dtype elsewhere.")
    ngram_speculation: int = opt(-1, "n-gram speculation: tokens proposed from the prompt (lookup 2-4); -1 auto: 4 on "
                                  "CPU, where it wins, off on GPUs, where it lost; 0 off.", ge=-1, le=16)
    draft_speculation: int = opt(-1, "draft-head speculation: tokens the model's EAGLE draft head (<model>/draft, "
                                     "`export.draft_head`) proposes per step, checked in one step of the model "
                                     "(the model's own greedy choices); -1 auto: 1 on GPUs when the model has a head "
                                     "(it won there at batch 1 and at 64 clients), off on CPU; 0 off.", ge=-1, le=8)
    prefix_caching: bool = opt(True, "--enable-prefix-caching (the schema prompt repeats across questions).")
    lora_adapters: list[str] = opt([], "name=path adapters served with --enable-lora beside the base model (no "
                                       "merge needed; each has its own prompt contract from its model card).")
    max_lora_rank: int = opt(0, "--max-lora-rank when adapters are served (0: the largest adapter's rank).", ge=0)
    cpu_kv_cache_gib: int = opt(1, "CPU replicas: VLLM_CPU_KVCACHE_SPACE per replica (whole GiB).", ge=1)
    cpu_stream_interval: int = opt(8, "CPU replicas: stream tokens this many at a time (--stream-interval); "
                                      "fewer events for the API server on a core it shares with the model.", ge=1)
    gpu_api_servers: int = opt(0, "GPU replicas: API server processes in front of each engine (--api-server-count); "
                                  f"0: up to 4, two CPU cores each ({FIGURES['serve_api_servers']}).", ge=0)
    gpu_full_graphs: bool = opt(False, "GPU replicas: run every batch as one CUDA graph, a new question's prefill "
                                       "too (vLLM's cudagraph_mode FULL; its default graphs a prefill in pieces with "
                                       f"attention between them). Off by default, since it changes greedy answers: {FIGURES['serve_full_graphs']}.")
    gpu_stream_interval: int = opt(4, "GPU replicas: stream tokens this many at a time (--stream-interval); the "
                                      "first token is sent at once.", ge=1)
    warmup_requests: int = opt(3, "Requests sent to each replica before it counts as ready.", ge=0)
    start_timeout_s: int = opt(600, "Give up on a replica that is not healthy after this long.", ge=10)
    max_restarts: int = opt(5, "Supervised deployments (`serve run`, serve jobs): restarts of a dead replica "
                               "before giving up on it (backoff 2, 4, 8 ... 60 s).", ge=0)
    request_timeout_s: int = opt(0, "The router gives up on a replica's answer after this long and retries it on "
                                    "another (a replica that hangs keeps nobody waiting longer); 0: 120 s on GPUs, "
                                    "600 s on CPUs, where a first answer with an adapter can take minutes.", ge=0)
    idle_stop_s: int = opt(0, "Supervised deployments: stop by themselves after this many seconds without a request "
                              "through the router (0: never; Try it sets 3600, so a forgotten demo gives its memory "
                              "back).", ge=0)
    hang_timeout_s: int = opt(30, "Supervised deployments: a replica whose process lives but that has answered no "
                                  "health check for this long is stopped and started again (0: never).", ge=0)
    extra_args: list[str] = opt([], "More vLLM flags, verbatim (e.g. --max-num-seqs 64).")

    def adapters(self) -> dict[str, str]:
        """{served name: adapter folder} from lora_adapters."""
        out = {}
        for item in self.lora_adapters:
            name, _, path = item.partition("=")
            out[name.strip()] = path.strip()
        return out

    def problems(self) -> list[str]:
        out = []
        if self.replicas < 1 and not self.workers:
            out.append("replicas: at least one replica (or a remote worker URL) is needed")
        for item in self.lora_adapters:
            name, eq, path = item.partition("=")
            if not eq or not name.strip() or not path.strip():
                out.append(f"lora_adapters: {item!r} is not name=path")
            elif not (Path(path.strip()).expanduser() / "adapter_config.json").is_file():
                out.append(f"lora_adapters: {path.strip()} has no adapter_config.json (a trained run's adapter/ folder)")
            elif name.strip() == self.name:
                out.append(f"lora_adapters: {name.strip()!r} is the base model's name; give the adapter another name")
        if self.model.lower().endswith(".gguf"):
            merged = Path(self.model).expanduser().parent.parent / "merged"
            out.append(f"model: {self.model} is a GGUF file, for llama.cpp or Ollama (`ollama create -f` with a "
                       "Modelfile naming it): vLLM CPU 0.32 has no GGUF loader, and vLLM's GGUF path on GPUs is "
                       "experimental and untested here; serve the merged export it was made from"
                       + (f" ({merged})" if (merged / "config.json").is_file() else " (export format `merged`)"))
        for w in self.workers:
            if not w.startswith(("http://", "https://")):
                out.append(f"workers: {w!r} is not a URL like http://host:8100")
        if self.draft_speculation > 0 and self.ngram_speculation > 0:
            out.append("draft_speculation and ngram_speculation are both on: vLLM runs one speculation method; set "
                       "one of them to 0")
        if not NAME_OK.fullmatch(self.name) or self.name in (".", ".."):
            out.append(f"name: {self.name!r} must be letters, digits, '.', '_' or '-' (starting with a letter or digit): "
                       "it names the deployment's folder")
        return out


def load_serve_config(path: str | Path | None = None, overrides: list[str] | None = None,
                      tree: dict | None = None, source: str = "serve") -> ServeConfig:
    """defaults <- YAML file (or tree) <- key=value overrides; every problem in one ConfigError."""
    if path is not None:
        tree = read_config(path)       # one line for a missing, empty, UTF-16, binary or non-mapping file
        source = str(path)
    full = with_overrides(ServeConfig, tree or {}, overrides, source)
    cfg = build(ServeConfig, full, source)
    bad = cfg.problems()
    if bad:
        raise ConfigError(bad, source)
    return cfg
