"""Generation backends for evaluation: offline vLLM (serving env), any OpenAI endpoint, transformers.

Every backend takes prompts as token ids (sql/prompt.py renders them exactly as training did) and returns,
per prompt, a list of completions: the greedy one first, then sampled candidates when `candidates` > 0
(execution-guided voting), each optionally under a per-prompt grammar (schema-constrained decoding).

    from pipeline.evaluate.generate import Request, generate_vllm, generate_openai, generate_transformers
    reqs = [Request(ids, grammar=None) for ids in prompt_ids]
    outs, info = generate_vllm(model_dir, adapter_dir, reqs, stop_ids=[eos_id], candidates=8)
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.errors import SqlgenieError
from core.procs import log_tail, run_owned
from core.settings import home
from serving.client import CompletionsClient
from serving.config import DeploymentError
from serving.launch import vllm_available, vllm_python
from serving.plan import cpu_fp8_check, gpu_inventory, model_facts

SAMPLING = {"temperature": 0.7, "top_p": 0.95}


class GenerationError(SqlgenieError):
    """The generation backend failed (the line names the backend and its last error)."""


@dataclass
class Request:
    ids: list[int]
    grammar: str | None = None


def generate_vllm(model_path: Path, adapter: Path | None, reqs: list[Request], stop_ids: list[int],
                  max_new_tokens: int = 256, lora_rank: int = 16, candidates: int = 0,
                  max_model_len: int = 4096, greedy: bool = True, sampling: dict | None = None,
                  seed: int = 0) -> tuple[list[list[str]], dict]:
    """vLLM offline batch generation in the serving interpreter (a subprocess: vLLM lives in .venv-serve).
    `greedy=False`: only the `candidates` sampled ones (a second round, at `sampling`)."""
    if not vllm_available():
        raise GenerationError("the vLLM backend needs the serving environment (.venv-serve is missing): run "
                              "`make setup-serve`, set SQLGENIE_VLLM_PYTHON, or use --backend transformers")
    if not gpu_inventory():
        try:                      # the launcher's check: an FP8 export on a CPU whose FP8 products take ~1 s each
            cpu_fp8_check(model_facts(model_path))
        except DeploymentError as e:
            raise GenerationError(str(e)) from None
    with tempfile.TemporaryDirectory() as d:
        req, out = Path(d) / "req.json", Path(d) / "out.json"
        req.write_text(json.dumps({"model": str(model_path), "adapter": str(adapter) if adapter else None,
                                   "prompts": [r.ids for r in reqs], "grammars": [r.grammar for r in reqs],
                                   "max_tokens": max_new_tokens, "stop_token_ids": stop_ids,
                                   "max_lora_rank": lora_rank, "candidates": candidates,
                                   "sampling": sampling or SAMPLING, "greedy": greedy, "seed": seed,
                                   "max_model_len": max_model_len}))
        log = home() / "logs" / f"vllm-offline-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        # its own process group, stopped whole however this ends (vLLM's engine core outlives a killed parent)
        code = run_owned([vllm_python(), "-m", "serving.vllm_offline", str(req), str(out)], log, "vllm-offline")
        if code or not out.is_file():
            lines = log_tail(log, 200).strip().splitlines() or ["(no output)"]
            errors = [ln for ln in lines if ("Error" in ln or "error:" in ln) and "EngineDeadError" not in ln]
            raise GenerationError("vLLM generation failed: " + (errors or lines)[-1][:500] + f" (whole log: {log})")
        log.unlink(missing_ok=True)
        res = json.loads(out.read_text())
    return res["completions"], {k: res[k] for k in ("startup_s", "generate_s", "output_tokens")}


def generate_openai(base_url: str, reqs: list[Request], stop: list[str], max_new_tokens: int = 256,
                    concurrency: int = 8, candidates: int = 0, model: str | None = None,
                    progress=None, greedy: bool = True, sampling: dict | None = None,
                    seed: int = 0) -> tuple[list[list[str]], dict]:
    """Through an OpenAI-compatible endpoint (a replica or the router), `concurrency` requests in flight."""
    client = CompletionsClient(base_url, model=model)

    def one(r: Request) -> list[str]:
        texts = [client.complete(r.ids, max_tokens=max_new_tokens, stop=stop, grammar=r.grammar).text] if greedy else []
        if candidates:
            texts += client.complete(r.ids, max_tokens=max_new_tokens, stop=stop, grammar=r.grammar, n=candidates,
                                     seed=seed, **(sampling or SAMPLING)).texts
        if progress:
            progress(1)
        return texts

    with ThreadPoolExecutor(concurrency) as pool:
        outs = list(pool.map(one, reqs))
    return outs, {"endpoint": base_url, "model": client.model}


def generate_transformers(model_path: Path, adapter: Path | None, reqs: list[Request], tokenizer,
                          max_new_tokens: int = 256, batch_size: int = 16, candidates: int = 0,
                          progress=None, greedy: bool = True, sampling: dict | None = None,
                          seed: int = 0) -> list[list[str]]:
    """Batched, left-padded greedy decoding (no grammar support: use vllm or openai for --constrained); on the
    GPU when there is one (it used to load on the CPU even on a GPU machine: 6 evaluations of a 135M model at
    once on a 16-core GPU host did not finish 216 questions in 9 minutes)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)

    if any(r.grammar for r in reqs):
        raise GenerationError("constrained decoding needs vLLM: use --backend vllm or openai")
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.bfloat16)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(reqs)), key=lambda i: len(reqs[i].ids))
    out: list[list[str]] = [[] for _ in reqs]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        longest = max(len(reqs[i].ids) for i in idx)
        ids = torch.tensor([[pad] * (longest - len(reqs[i].ids)) + reqs[i].ids for i in idx], device=device)
        mask = torch.tensor([[0] * (longest - len(reqs[i].ids)) + [1] * len(reqs[i].ids) for i in idx],
                            device=device)
        with torch.no_grad():
            runs = ([dict(do_sample=False)] if greedy else []) + (
                [dict(do_sample=True, num_return_sequences=candidates, **(sampling or SAMPLING))] if candidates else [])
            for kw in runs:
                gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=pad, **kw)
                per = kw.get("num_return_sequences", 1)
                for j, i in enumerate(idx):
                    for k in range(per):
                        out[i].append(tokenizer.decode(gen[j * per + k, longest:], skip_special_tokens=True))
        if progress:
            progress(len(idx))
    return out
