"""Probe: how fast can one GPU decode the fine-tuned SmolLM2's answers at batch 1 outside vLLM?

    python bench/b1_decode_probe.py MERGED [--limit 40] [--out FILE]

vLLM spends ~1.8 ms per decode step on an H200 for this 135M model (docs/benchmarks.md, run 9), several
times its forward. This probe decodes the first --limit OOD prompts (rendered and tokenized exactly as
`TextToSql.ask` does) one at a time, greedy, two ways in one run:
  hf-generate   transformers' generate (dynamic cache, eager)
  graph-loop    a hand-written loop: static KV cache, the one-token step compiled and captured as a CUDA
                graph (torch.compile mode reduce-overhead), argmax on the GPU, EOS checked each step
and prints ms per answer (p50 / mean), ms per decode step and how many answers match between the two.
It measures the model's decode only (no HTTP, no router, no client work): the question it answers is
whether a batch-1 path of our own could beat vLLM's per-step cost by enough to matter. On an H200 (session 12)
it could not: graph-loop 4.07 ms per token, generate 30.3 ms, vLLM ~1.8 ms (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.modelinfo import read_card  # noqa: E402
from sql.prompt import ChatFormatter, PromptContract  # noqa: E402

MAX_NEW = 256
CACHE_LEN = 2048


def prompt_ids(fmt, limit: int) -> list[list[int]]:
    """The prompts bench/latency_b1.py sends, as token ids."""
    from latency_b1 import prompts  # bench/ is on sys.path when this file runs

    return [fmt.encode(fmt.prompt({"schema": schema, "sample_data": "", "question": q})) for schema, q in prompts(limit)]


def hf_generate(model, tok, ids: list[int], device) -> list[int]:
    import torch

    x = torch.tensor([ids], device=device)
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=MAX_NEW, do_sample=False,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return out[0, len(ids):].tolist()


class GraphLoop:
    """Static-cache greedy decoding with the one-token step compiled (CUDA graphs on a GPU)."""

    def __init__(self, model, eos: int, device):
        import torch
        from transformers import StaticCache

        self.model, self.eos, self.device = model, eos, device
        self.cache = StaticCache(config=model.config, max_cache_len=CACHE_LEN)
        mode = "reduce-overhead" if device == "cuda" else "default"
        self.step = torch.compile(self._step, mode=mode, fullgraph=True, dynamic=False)

    def _step(self, token, pos):
        out = self.model(input_ids=token, cache_position=pos, past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1].argmax(-1, keepdim=True)

    def __call__(self, ids: list[int]) -> list[int]:
        import torch

        self.cache.reset()
        n = len(ids)
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids], device=self.device),
                             cache_position=torch.arange(n, device=self.device), past_key_values=self.cache,
                             use_cache=True)
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            got = []
            for i in range(MAX_NEW):
                t = int(token)
                got.append(t)
                if t == self.eos:
                    break
                token = self.step(token.clone(), torch.tensor([n + i], device=self.device)).clone()
        return got


def timed(fn, rows) -> tuple[list[float], list[list[int]]]:
    import torch

    secs, outs = [], []
    for ids in rows:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        outs.append(fn(ids))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        secs.append(time.perf_counter() - t)
    return secs, outs


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(a.model)
    fmt = ChatFormatter.for_contract(tok, PromptContract.from_card(read_card(Path(a.model))))
    rows = prompt_ids(fmt, a.limit)
    loop = GraphLoop(model, tok.eos_token_id, device)
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "prompts": len(rows)}
    for name, fn in (("graph-loop", loop), ("hf-generate", lambda ids: hf_generate(model, tok, ids, device))):
        t = time.perf_counter()
        timed(fn, rows[: a.warmup])                       # compile / capture / allocator warm-up
        warm = time.perf_counter() - t
        secs, outs = timed(fn, rows)
        steps = sum(len(o) for o in outs)
        report[name] = {"warmup_s": round(warm, 1), "p50_ms": round(1000 * statistics.median(secs), 2),
                        "mean_ms": round(1000 * statistics.mean(secs), 2), "tokens": steps,
                        "ms_per_token": round(1000 * sum(secs) / steps, 3), "answers": outs}
        print(f"{name}: p50 {report[name]['p50_ms']} ms, mean {report[name]['mean_ms']} ms, "
              f"{report[name]['ms_per_token']} ms per token (prefill included), warm-up {warm:.1f} s", flush=True)
    same = sum(x == y for x, y in zip(report["graph-loop"]["answers"], report["hf-generate"]["answers"]))
    report["same_answers"] = same
    if a.out:
        Path(a.out).write_text(json.dumps(report))
    print("| decode path | p50 ms per answer | mean ms | ms per token | warm-up s |\n|---|---|---|---|---|")
    for name in ("graph-loop", "hf-generate"):
        r = report[name]
        print(f"| {name} | {r['p50_ms']} | {r['mean_ms']} | {r['ms_per_token']} | {r['warmup_s']} |")
    print(f"answers identical between the two: {same}/{len(rows)}")


if __name__ == "__main__":
    main()
