"""Evaluation stage: generate SQL for held-out questions and score it by execution on SQLite.

    python -m pipeline evaluate -c configs/smollm2-cpu.yaml [--adapter latest|PATH] [--limit 500]

Prompts are rendered exactly as in training (same system prompt, schema, chat template); decoding is
greedy and stops at the end of turn. Writes <home>/runs/<name>/eval/<label>/metrics.json (execution
accuracy, valid-SQL rate, exact match, counts per status, breakdowns by sql_complexity and task type)
and rows.jsonl (question, gold, raw completion, predicted SQL, status, error).

Backends: offline vLLM in the serving environment (default when it exists; adapters merged first or
served as LoRA), any OpenAI-compatible endpoint (a replica or the router), transformers (batched,
left-padded). Spider folders are scored on their own databases, optionally as a test suite
(pipeline/evaluate/spider.py); `python -m pipeline compare A B` reports two runs side by side.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.errors import ConfigError


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict

    def summary(self) -> str:
        m = self.metrics
        return (f"{m['label']}: execution accuracy {m['execution_accuracy']:.1%} on {m['scored']} scorable rows "
                f"(valid SQL {m['valid_sql_rate']:.1%}, exact {m['exact_match']:.1%}, {m['unscorable']} unscorable) "
                f"in {m['seconds']:.0f} s -> {self.out_dir}")


def _rows(split: str, limit: int, seed: int) -> list[dict]:
    import random

    from pipeline.data.loaders import load

    rows = [r for r in load(split) if not r["bad"] and r["kind"] == "sql"]
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def generate_transformers(model_path: Path, adapter: Path | None, prompts: list[str], tokenizer,
                          max_new_tokens: int = 160, batch_size: int = 16, progress=None) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=torch.bfloat16)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        for j, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[j, enc.input_ids.shape[1]:], skip_special_tokens=True)
        if progress:
            progress(len(idx))
    return out


def score_predictions(rows: list[dict], completions: list[str], suite: int = 0) -> tuple[list[dict], dict]:
    """Extract and score each completion against its canonical row; (per-row records, metrics).

    Rows with a database file (Spider) run against it, and against `suite` generated databases."""
    from pipeline.evaluate.scoring import score
    from pipeline.evaluate.spider import score_suite
    from serving.sql.extract import extract_sql

    per_row, by = [], defaultdict(Counter)
    for r, text in zip(rows, completions):
        pred = extract_sql(text)
        if r.get("db_path"):
            s = score_suite(r["db_path"], r["sql"], pred, suite)
        else:
            s = score(f"{r['schema']}\n{r['sample_data']}", r["sql"], pred, r["sql_task_type"])
        per_row.append({"id": r["id"], "question": r["question"], "gold": r["sql"], "raw": text, "pred": pred,
                        "status": s.status, "valid": s.valid, "exact": s.exact, "error": s.error,
                        "sql_complexity": r["sql_complexity"], "sql_task_type": r["sql_task_type"],
                        "domain": r["domain"]})
        if s.status != "unscorable":
            for key in ("sql_complexity", "sql_task_type", "domain"):
                if not r[key]:
                    continue
                by[f"{key}:{r[key]}"]["n"] += 1
                by[f"{key}:{r[key]}"]["match"] += s.correct
    status = Counter(p["status"] for p in per_row)
    scored = len(per_row) - status["unscorable"]
    metrics = {
        "rows": len(per_row), "scored": scored, "unscorable": status["unscorable"],
        "execution_accuracy": status["match"] / scored if scored else 0.0,
        "valid_sql_rate": sum(p["valid"] for p in per_row) / max(1, len(per_row)),
        "exact_match": sum(p["exact"] for p in per_row) / max(1, len(per_row)),
        "status": dict(status),
        "breakdown": {k: {"n": v["n"], "accuracy": v["match"] / v["n"]} for k, v in sorted(by.items())},
    }
    return per_row, metrics


SERVE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serve" / "bin" / "python"


def generate_vllm(model_path: Path, adapter: Path | None, prompts: list[str], tokenizer, max_new_tokens: int = 160,
                  lora_rank: int = 16) -> tuple[list[str], dict]:
    """vLLM offline batch generation in the serving environment (a subprocess)."""
    import subprocess
    import tempfile

    from pipeline.errors import SqlgenieError

    if not SERVE_PYTHON.is_file():
        raise SqlgenieError(f"the vLLM backend needs the serving environment ({SERVE_PYTHON} is missing): run "
                            "`scripts/setup.sh serve`, or use --backend transformers")
    with tempfile.TemporaryDirectory() as d:
        req, out = Path(d) / "req.json", Path(d) / "out.json"
        req.write_text(json.dumps({"model": str(model_path), "adapter": str(adapter) if adapter else None,
                                   "prompts": prompts, "max_tokens": max_new_tokens,
                                   "stop_token_ids": [tokenizer.eos_token_id], "max_lora_rank": lora_rank}))
        p = subprocess.run([str(SERVE_PYTHON), "-m", "serving.vllm_offline", str(req), str(out)],
                           cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
        if p.returncode or not out.is_file():
            lines = (p.stderr or p.stdout).strip().splitlines() or ["(no output)"]
            errors = [ln for ln in lines if "Error" in ln or "error:" in ln]
            raise SqlgenieError("vLLM generation failed: " + (errors or lines)[-1][:500])
        res = json.loads(out.read_text())
    return res["completions"], {k: res[k] for k in ("startup_s", "generate_s", "output_tokens")}


def generate_openai(base_url: str, prompts: list[str], stop: list[str], max_new_tokens: int = 160,
                    concurrency: int = 8, progress=None) -> tuple[list[str], dict]:
    """Through an OpenAI-compatible endpoint (a replica or the router), `concurrency` requests in flight."""
    from concurrent.futures import ThreadPoolExecutor

    from serving.client import CompletionsClient

    client = CompletionsClient(base_url)

    def one(p: str) -> str:
        text = client.complete(p, max_tokens=max_new_tokens, stop=stop).text
        if progress:
            progress(1)
        return text

    with ThreadPoolExecutor(concurrency) as pool:
        texts = list(pool.map(one, prompts))
    return texts, {"endpoint": base_url, "model": client.model}


def merged_copy(model_path: Path, adapter: Path, dest: Path, tokenizer) -> Path:
    """Base + adapter merged in bf16 (never into a 4-bit model) for engines that serve it faster merged."""
    from pipeline.export.merge import merge_adapter, model_card

    return merge_adapter(model_path, adapter, dest, tokenizer, model_card(str(model_path), adapter, {}))


def run(cfg: RunConfig, adapter: str | None = None, split: str = "bundled:test", limit: int = 500,
        label: str | None = None, backend: str = "auto", merge: bool = False,
        endpoint: str | None = None, suite: int = 0) -> EvalResult:
    """backend auto: offline vLLM when the serving environment exists (an adapter is merged first: vLLM's
    CPU LoRA path is 15x slower), else transformers."""
    from tqdm import tqdm

    from pipeline import assets
    from pipeline.data.formatting import ChatFormatter
    from pipeline.data.prepare import load_tokenizer

    t0 = time.time()
    if adapter == "latest":
        adapter = str(cfg.run_dir() / "train" / "adapter")
    adapter_path = Path(adapter) if adapter else None
    if adapter_path is not None and not (adapter_path / "adapter_config.json").is_file():
        raise ConfigError([f"--adapter: {adapter_path} has no adapter_config.json (train first, or give a folder)"])
    if backend == "openai" and not endpoint:
        raise ConfigError(["--backend openai needs --endpoint http://HOST:PORT (a vLLM replica or the router)"])
    label = label or ("adapter" if adapter_path else "base")
    tok = load_tokenizer(cfg)
    fmt = ChatFormatter(tok, cfg.data.system_prompt, cfg.data.include_sample_rows)
    rows = _rows(split, limit, cfg.data.seed)
    prompts = [fmt.prompt(r) for r in rows]
    model_path = assets.resolve(cfg.model.name_or_path)
    if backend == "auto":
        backend = "vllm" if SERVE_PYTHON.is_file() else "transformers"
        merge = merge or backend == "vllm"
    t_gen = time.time()
    gen_info: dict = {}
    if backend == "vllm" and merge and adapter_path is not None:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            merged = merged_copy(model_path, adapter_path, Path(d) / "merged", tok)
            raw, gen_info = generate_vllm(merged, None, prompts, tok)
    elif backend == "vllm":
        raw, gen_info = generate_vllm(model_path, adapter_path, prompts, tok, lora_rank=cfg.train.lora.r)
    elif backend == "openai":
        with tqdm(total=len(rows), desc=f"generating ({label}) via {endpoint}", unit="row") as bar:
            raw, gen_info = generate_openai(endpoint, prompts, [tok.eos_token], progress=bar.update)
    else:
        with tqdm(total=len(rows), desc=f"generating ({label})", unit="row") as bar:
            raw = generate_transformers(model_path, adapter_path, prompts, tok, progress=bar.update)
    gen_info["generation_s"] = time.time() - t_gen
    gen_info["rows_per_s"] = len(rows) / gen_info["generation_s"]

    per_row, metrics = score_predictions(rows, raw, suite)
    metrics.update({"label": label, "adapter": str(adapter_path) if adapter_path else None, "split": split,
                    "backend": backend + ("+merged" if merge and adapter_path else ""), "generation": gen_info,
                    "test_suite_databases": suite, "seconds": time.time() - t0})
    out = cfg.run_dir() / "eval" / label
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "rows.jsonl").open("w") as f:
        for p in per_row:
            f.write(json.dumps(p) + "\n")
    return EvalResult(out, metrics)
