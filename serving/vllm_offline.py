"""Offline batch generation with vLLM, run in the serving environment (.venv-serve).

The evaluation stage (which lives in the training environment) calls this as a subprocess:

    .venv-serve/bin/python -m serving.vllm_offline request.json completions.json

request.json: {"model": dir, "adapter": dir|null, "prompts": [[token ids], ...], "grammars": [str|null, ...],
               "max_tokens": 256, "stop_token_ids": [...], "max_model_len": 4096, "max_lora_rank": 16,
               "candidates": 0, "sampling": {"temperature": 0.7, "top_p": 0.95}, "greedy": true, "seed": 0}
completions.json: {"completions": [[greedy, candidate, ...], ...], "startup_s", "generate_s", "output_tokens"}
("greedy": false leaves the greedy completion out: a second round of samples only.)
Prompts are token ids rendered by sql/prompt.py (the training prompt, no special tokens added here).
A grammar (xgrammar EBNF) constrains that prompt's outputs; `candidates` > 0 adds that many sampled ones.
"""
from __future__ import annotations

import json
import os
import sys
import time

from core.cpu import bf16_native
from core.procs import end_group_on_sigterm
from serving.grammar_check import problem


def main(req_path: str, out_path: str) -> None:
    end_group_on_sigterm()      # the evaluation that started this died or stops it: EngineCore + workers go too
    req = json.loads(open(req_path).read())
    if any(req.get("grammars") or []):
        if why := problem():
            raise SystemExit(f"error: constrained decoding is broken here: {why}")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    t0 = time.time()
    # the dtype the serving plan picks: float32 on a CPU without bf16 instructions (serving/plan.py)
    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import StructuredOutputsParams
    on_gpu = torch.cuda.is_available()
    dtype = "bfloat16" if on_gpu or bf16_native() else "float32"
    kw = {"model": req["model"], "dtype": dtype, "max_model_len": req.get("max_model_len", 4096),
          "enforce_eager": True, "seed": 0}
    lora = None
    if req.get("adapter"):
        from vllm.lora.request import LoRARequest

        kw.update(enable_lora=True, max_lora_rank=req.get("max_lora_rank", 16))
        lora = LoRARequest("adapter", 1, req["adapter"])
    llm = LLM(**kw)
    startup = time.time() - t0
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in req["prompts"]]
    grammars = req.get("grammars") or [None] * len(prompts)
    stop = req.get("stop_token_ids") or None

    def params(grammar: str | None, n: int, sampled: bool) -> SamplingParams:
        so = StructuredOutputsParams(grammar=grammar) if grammar else None
        extra = req.get("sampling", {}) if sampled else {"temperature": 0.0}
        # no per-request seed on CPU: vLLM CPU 0.32 kills its engine on a seeded request whose prefill is chunked
        seed = req.get("seed", 0) if sampled and on_gpu else None
        return SamplingParams(max_tokens=req.get("max_tokens", 256), stop_token_ids=stop, n=n, seed=seed,
                              structured_outputs=so, **extra)

    t1 = time.time()
    tqdm = sys.stderr.isatty()
    texts, tokens = [[] for _ in prompts], 0
    if req.get("greedy", True):
        greedy = llm.generate(prompts, [params(g, 1, False) for g in grammars], lora_request=lora, use_tqdm=tqdm)
        texts = [[o.outputs[0].text] for o in greedy]
        tokens = sum(len(o.outputs[0].token_ids) for o in greedy)
    n = int(req.get("candidates") or 0)
    if n:
        sampled = llm.generate(prompts, [params(g, n, True) for g in grammars], lora_request=lora, use_tqdm=tqdm)
        for t, o in zip(texts, sampled):
            t += [c.text for c in o.outputs]
            tokens += sum(len(c.token_ids) for c in o.outputs)
    gen = time.time() - t1
    with open(out_path + ".tmp", "w") as f:
        json.dump({"completions": texts, "startup_s": startup, "generate_s": gen, "output_tokens": tokens}, f)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
