"""Offline batch generation with vLLM (greedy), run in the serving environment (.venv-serve).

The evaluation stage (which lives in the training environment) calls this as a subprocess:

    .venv-serve/bin/python -m serving.vllm_offline request.json completions.json

request.json: {"model": dir, "adapter": dir|null, "prompts": [...], "max_tokens": 160,
               "stop_token_ids": [...], "max_model_len": 2048, "max_lora_rank": 16}
completions.json: {"completions": [...], "startup_s": float, "generate_s": float, "output_tokens": int}
Prompts are already rendered with the chat template (the reference design's contract), so vLLM gets
text and never applies a template of its own.
"""
from __future__ import annotations

import json
import os
import sys
import time


def main(req_path: str, out_path: str) -> None:
    req = json.loads(open(req_path).read())
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    t0 = time.time()
    from vllm import LLM, SamplingParams

    kw = {"model": req["model"], "dtype": "bfloat16", "max_model_len": req.get("max_model_len", 2048),
          "enforce_eager": True, "seed": 0}
    lora = None
    if req.get("adapter"):
        from vllm.lora.request import LoRARequest

        kw.update(enable_lora=True, max_lora_rank=req.get("max_lora_rank", 16))
        lora = LoRARequest("adapter", 1, req["adapter"])
    llm = LLM(**kw)
    startup = time.time() - t0
    params = SamplingParams(temperature=0.0, max_tokens=req.get("max_tokens", 160),
                            stop_token_ids=req.get("stop_token_ids") or None)
    t1 = time.time()
    outs = llm.generate(req["prompts"], params, lora_request=lora, use_tqdm=sys.stderr.isatty())
    gen = time.time() - t1
    texts = [o.outputs[0].text for o in outs]
    with open(out_path + ".tmp", "w") as f:
        json.dump({"completions": texts, "startup_s": startup, "generate_s": gen,
                   "output_tokens": sum(len(o.outputs[0].token_ids) for o in outs)}, f)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
