"""Measured figures that plan reasons, help texts and flag explanations quote: the one place they live.

Each is a sentence fragment with its source row in docs/benchmarks.md (same machine, same run as its
baseline) and comes from a bench of the lab (`sqlgenie bench NAME`, named on each group below). When a
benchmark is re-run, update the number here and every message that quotes it follows.

    from core.measured import FIGURES
    reason = f"FP8 base: {FIGURES['train_fp8_vs_anchor']}"
"""
from __future__ import annotations

FIGURES = {
    # training (H200, 8B shape, re-measured 2026-11-30 with `sqlgenie bench train_gpu`; the CPU one: train_cpu)
    "train_fp8_vs_anchor": "21.2k tok/s vs 15.8k for Unsloth bf16 without recompute: 1.34x, H200 8B",
    "train_fp8_quality": "eval loss +4.3% vs a bf16 base after 20 SmolLM2 steps (NF4: +9.7%)",
    "train_unsloth_qlora": "QLoRA 11.0k tok/s vs 3.4k for bitsandbytes + Liger, H200 8B",
    "train_nf4_fp8": "13.2k tok/s vs 11.1k for Unsloth QLoRA inside 13 GiB: 1.19x, H200 8B; loss +2.3% after 6 random-8B steps",
    "train_packed_bf16": "packed Gretel-like rows in bf16: 15.0k real tok/s vs 8.0k for Unsloth's packed path, H200 8B",
    "train_packing": "2.66x real tokens/s with the FP8 base (1.95x in bf16) vs the best anchor padded on Gretel-like "
                     "lengths, H200",
    "train_cpu_fp32_autocast": "fp32 weights under bf16 autocast: 290 vs 257 tok/s for bf16 weights, SmolLM2 LoRA on 2 cores",
    # serving (H200 unless said): `sqlgenie bench latency_b1` (per answer, graphs, drafts, fp8), serving_sweep (load,
    # API servers), cpu_scaling (CPU replicas); serve_full_graphs' agreement counts came from a numerics probe
    # since retired (latency_b1's eager variant is its reference)
    "serve_api_servers": "one Python API server topped out at 10.8k tok/s at 256 concurrent on an H200; four gave 17.6k",
    "serve_full_graphs": "the first token of an answer came ~4 ms sooner (7.3 vs 11.2 ms, H200, fine-tuned SmolLM2, "
                         "same run) and a decoded token cost about the same (1.58 vs 1.53 ms), but the graph's attention "
                         "rounds differently: 8-token greedy answers matched eager vLLM's in 9 of 30 prompts vs 27 of 30 "
                         "with the default graphs, and 80 of 100 full answers changed",
    "serve_fp8_decode": "FP8 weights decode ~1.4x bf16 at batch 1 (283 vs 203 tok/s per stream, H200 8B)",
    "serve_fp8_small": "SmolLM2-135M on an H200 at batch 1: p50 per answer 57-91 ms with fp8 vs 71-82 ms bf16 over "
                       "three runs (a host's drift between calls exceeds the difference), and fp8 changed 86 of 100 "
                       "greedy answers",
    "serve_cpu_fp32": "SmolLM2 on a 2-core AVX2 CPU: mean 3.3 vs 5.3 s per answer, 5.5 vs 23.6 s for a new wide schema",
    "serve_cpu_ngram": "SmolLM2 on a 2-core AVX2 CPU with float32: p50 2.18 vs 3.07 s per answer, answers identical",
    "serve_gpu_ngram": "vLLM 0.24's ngram_gpu, 4 tokens, on an H200: p50 169 vs 71 ms per answer in bf16 (0.30 draft "
                       "tokens accepted a step), 413 vs 118 in fp8; the host-side ngram proposer lost as well (190 vs "
                       "71 ms): either one moves Llama models off vLLM's faster V2 model runner",
    "serve_gpu_draft": "SmolLM2 fine-tune on an H200, 100 unseen-schema questions at batch 1 (one run): p50 85 vs "
                       "93 ms per answer (1.09x) with 1 proposed token, 88 ms with 2; the verify step changes 18 of "
                       "100 greedy answers vs plain decoding (bf16 rounding of a batch of positions: 1, 2, 3, 4 and 6 "
                       "proposed tokens give the same answers)",
    "serve_cpu_draft": "p50 4.42 vs 2.87 s per answer on a 2-core CPU: the head also runs over the whole prompt",
    "serve_gpu_draft_load": "1 proposed token: 111 vs 102 answers/s at 64 concurrent clients without the head (2 "
                            "tokens: 95; 3: 0.90x in another run), H200, one run; such runs vary by ~15%",
    "serve_cpu_worker_inline": "2 replicas on 2 cores: 0.77x -> 1.55x of one with the worker inside the engine process",
    "serve_cpu_lora": "vLLM CPU's LoRA path generates ~15x slower than the merged model (0.78 vs 11.6 rows/s, SmolLM2)",
}
