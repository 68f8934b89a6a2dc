"""Where one batch-1 decode step of vLLM goes: the GPU's kernels, the GPU's gaps inside a step, and time the GPU waits.

    PYTHONPATH=/tmp/vsite:/tmp/site:$PWD python3 bench/b1_step_profile.py MODEL_DIR --dummy \
        --variants launcher no-stats no-async fp8 --out /tmp/out/step-profile.json          # the H200
    bench/device_session.sh PHASE=steps [.gpuprof]                                         # the same, one call

The batch-1 answer latency bench (bench/latency_b1.py) found a decode step of the 135M SmolLM2 costs ~1.8 ms in
vLLM on an H200, for a forward whose weights take ~0.06 ms to read. This bench says where that time goes, so the
next lever is aimed, not guessed:

1. Per variant (bench/latency_b1.py's VARIANTS: the launcher's flags plus a change), one replica through the
   launcher; the same real OOD prompt (schema + question, the product's prompt token ids) asked one at a time
   with max_tokens 1 and then max_tokens 1 + T (ignore_eos, greedy): the step time is the difference of the
   medians over T, as a client sees it (HTTP and prefill cancel out).
2. For the first variant, vLLM's own torch profiler (`--profiler-config`, /start_profile, /stop_profile) records
   a few answers; the worker's trace gives, per decode step: the kernels' summed time, the GPU's busy time
   (union of kernel intervals), the wall time, kernels per step, the largest kernel families, and the engine's
   CPU annotations (preprocess / forward / sample / ...) per call.

--dummy serves random weights (`--load-format dummy`) from a model folder that holds only config and tokenizer:
step timing does not depend on the weights (every answer runs T tokens, ignore_eos). Prints a table last.
"""
from __future__ import annotations

import argparse
import gzip
import json
import signal
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import latency_b1  # noqa: E402

KERNEL_FAMILIES = (   # first match wins: FA3's kernels are cutlass device kernels, and its KV write says "flash"
    ("attention", ("flashattn", "flash::", "fwd_kernel", "attn")), ("kv write", ("reshape_and_cache",)),
    ("norm (inductor fuses the next GEMV in)", ("rms", "norm")),
    ("gemm", ("gemm", "gemv", "nvjet", "cublas", "sm90_xmma", "cutlass", "_mm")),
    ("rotary", ("rotary",)), ("activation", ("silu", "act_and_mul")),
    ("sampling", ("argmax", "sort", "topk", "softmax", "sample", "gumbel", "exponential")),
    ("copy / fill", ("copy", "fill", "memcpy", "memset", "cat")), ("elementwise", ("elementwise", "vectorized", "triton_")))


def family(name: str) -> str:
    low = name.lower()
    for fam, keys in KERNEL_FAMILIES:
        if any(k in low for k in keys):
            return fam
    return "other"


def post(url: str, path: str, body: dict | None = None, timeout: float = 300.0):
    import requests

    r = requests.post(url.rstrip("/") + path, json=body, timeout=timeout)
    r.raise_for_status()
    return r


def answer_s(url: str, model: str, ids: list[int], tokens: int) -> float:
    t0 = time.perf_counter()
    out = post(url, "/v1/completions", {"model": model, "prompt": ids, "max_tokens": tokens, "temperature": 0,
                                        "ignore_eos": True}).json()
    wall = time.perf_counter() - t0
    got = out["usage"]["completion_tokens"]
    if got != tokens:
        raise RuntimeError(f"asked for {tokens} tokens, got {got}: ignore_eos not honoured")
    return wall


def step_ms(url: str, model: str, ids: list[int], tokens: int, repeats: int) -> dict:
    for _ in range(3):                                    # warm: graphs, the prefix cache of this prompt
        answer_s(url, model, ids, tokens + 1)
    one = [answer_s(url, model, ids, 1) for _ in range(repeats)]
    full = [answer_s(url, model, ids, tokens + 1) for _ in range(repeats)]
    return {"first_token_ms": 1e3 * statistics.median(one), "answer_ms": 1e3 * statistics.median(full),
            "step_ms": 1e3 * (statistics.median(full) - statistics.median(one)) / tokens}


def trace_events(trace_dir: Path, since: float, wait_s: float = 120.0) -> list[dict]:
    """The GPU worker's chrome trace written after `since` (vLLM writes it when the profiler stops)."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        files = [f for f in trace_dir.rglob("*.pt.trace.json*") if f.stat().st_mtime >= since]
        if files:                                        # the front end is not traced (ignore_frontend)
            f = max(files, key=lambda p: p.stat().st_size)
            time.sleep(2)                                # let the writer finish
            raw = gzip.open(f).read() if f.suffix == ".gz" else f.read_bytes()
            return json.loads(raw)["traceEvents"]
        time.sleep(1)
    raise RuntimeError(f"no profiler trace appeared in {trace_dir} within {wait_s:.0f} s")


def step_breakdown(events: list[dict], steps: int) -> dict:
    """Per decode step: kernel time, GPU busy time (union of kernel intervals), wall time between the first and
    the last kernel, kernels per step, time per kernel family; CPU annotations per call."""
    kernels = sorted((e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"), key=lambda e: e["ts"])
    if not kernels:
        return {"error": "the trace holds no GPU kernels"}
    busy, end = 0.0, kernels[0]["ts"]
    for k in kernels:                                    # union of [ts, ts + dur]
        s, e = k["ts"], k["ts"] + k.get("dur", 0)
        if e > end:
            busy += e - max(s, end)
            end = e
    wall = end - kernels[0]["ts"]
    fams: dict[str, float] = defaultdict(float)
    names: dict[str, list[float]] = defaultdict(list)
    for k in kernels:
        fams[family(k["name"])] += k.get("dur", 0)
        names[k["name"]].append(k.get("dur", 0))
    top = sorted(names.items(), key=lambda x: -sum(x[1]))[:12]
    notes: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") in ("user_annotation", "gpu_user_annotation") and e.get("ph") == "X" and ":" in e["name"]:
            notes[e["name"]].append(e.get("dur", 0))
    graphs = sum(1 for e in events if e.get("name") == "cudaGraphLaunch")
    return {"steps": steps, "kernels": len(kernels), "kernels_per_step": len(kernels) / steps,
            "graph_launches": graphs, "wall_us_per_step": wall / steps, "busy_us_per_step": busy / steps,
            "kernel_sum_us_per_step": sum(k.get("dur", 0) for k in kernels) / steps,
            "gpu_idle_us_per_step": (wall - busy) / steps,
            "families_us_per_step": {f: v / steps for f, v in sorted(fams.items(), key=lambda x: -x[1])},
            "top_kernels": [{"name": n[:160], "per_step": len(v) / steps, "mean_us": statistics.fmean(v),
                             "us_per_step": sum(v) / steps} for n, v in top],
            "annotations_us_per_call": {n: {"calls": len(v), "mean_us": statistics.fmean(v)}
                                        for n, v in sorted(notes.items(), key=lambda x: -sum(x[1]))[:12]}}


def server_extra(dummy: bool, trace_dir: Path | None) -> list[str]:
    """vLLM flags for a bench replica: random weights (--dummy), vLLM's torch profiler writing to `trace_dir`."""
    extra = ["--load-format", "dummy"] if dummy else []
    if trace_dir is not None:
        extra += ["--profiler-config", json.dumps({"profiler": "torch", "torch_profiler_dir": str(trace_dir),
                                                   "torch_profiler_with_stack": False, "ignore_frontend": True})]
    return extra


def run_variant(name: str, model_dir: Path, dummy: bool, tokens: int, repeats: int, profile_answers: int,
                trace_dir: Path | None) -> dict:
    with latency_b1.served_variant(name, model_dir, server_extra(dummy, trace_dir), deployment="steps") as (state, t2s):
        schema, question = latency_b1.prompts(1)[0]
        ids = t2s.prompt(schema, question)[1]
        url = state["replicas"][0]["url"]
        res = {"flags": " ".join(state["replicas"][0].get("args", [])[8:]), "prompt_tokens": len(ids),
               **step_ms(url, "steps", ids, tokens, repeats)}
        if trace_dir is not None:
            since = time.time()
            post(url, "/start_profile")
            for _ in range(profile_answers):
                answer_s(url, "steps", ids, tokens + 1)
            post(url, "/stop_profile", timeout=600)
            res["profile"] = step_breakdown(trace_events(trace_dir, since), profile_answers * (tokens + 1))
        return res


def variant_args(variants: list[str], tokens_help: str, repeats: int, profile_answers: int) -> argparse.Namespace:
    """The command line the batch-1 variant benches share (model, --dummy, --variants, --tokens, --repeats,
    --profile-answers, --out), checked; SIGTERM then unwinds like Ctrl-C, so the replica is stopped."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="model folder (with --dummy: config and tokenizer are enough)")
    ap.add_argument("--dummy", action="store_true", help="random weights (--load-format dummy)")
    ap.add_argument("--variants", nargs="+", default=variants)
    ap.add_argument("--tokens", type=int, default=40, help=tokens_help)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--profile-answers", type=int, default=profile_answers,
                    help="answers recorded by the profiler (first variant)")
    ap.add_argument("--out")
    a = ap.parse_args()
    check_variants(a.variants)
    return a


def check_variants(variants: list[str]) -> None:
    """Exit naming the unknown variants; from here SIGTERM unwinds like Ctrl-C, so a replica is stopped."""
    unknown = [v for v in variants if v not in latency_b1.VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}: choose from {' '.join(latency_b1.VARIANTS)}")
    signal.signal(signal.SIGTERM, latency_b1._interrupt)


def main() -> None:
    a = variant_args(["launcher", "no-stats", "no-async"], "decode steps per answer", 15, 4)
    results = latency_b1.each_variant(
        a.variants, a.out,
        lambda v, trace: run_variant(v, Path(a.model), a.dummy, a.tokens, a.repeats, a.profile_answers, trace),
        lambda r: json.dumps({k: x for k, x in r.items() if k != "profile"})[:400], bool(a.profile_answers))
    first = next(iter(results.values()), {})
    lines = ["| variant | first token ms | answer ms (1 + T tokens) | decode step ms | step vs first variant |",
             "|---|---|---|---|---|"]
    for v, r in results.items():
        if "error" in r:
            lines.append(f"| {v} | error: {r['error'][:160]} | | | |")
            continue
        ratio = first.get("step_ms", float("nan")) / r["step_ms"]
        lines.append(f"| {v} | {r['first_token_ms']:.1f} | {r['answer_ms']:.1f} | {r['step_ms']:.3f} | {ratio:.2f}x |")
    prof = first.get("profile") or {}
    if "busy_us_per_step" in prof:
        lines += ["", f"profile of `{a.variants[0]}` ({prof['steps']} steps, {prof['kernels_per_step']:.0f} kernels and "
                  f"{prof['graph_launches'] / prof['steps']:.2f} graph launches per step):",
                  "| per step, us | wall (first to last kernel) | GPU busy | kernels' sum | GPU idle |", "|---|---|---|---|---|",
                  f"| | {prof['wall_us_per_step']:.0f} | {prof['busy_us_per_step']:.0f} | "
                  f"{prof['kernel_sum_us_per_step']:.0f} | {prof['gpu_idle_us_per_step']:.0f} |", "",
                  "| kernel family | us per step |", "|---|---|"]
        lines += [f"| {f} | {us:.1f} |" for f, us in prof["families_us_per_step"].items()]
        lines += ["", "| kernel | per step | mean us | us per step |", "|---|---|---|---|"]
        lines += [f"| {k['name'][:90]} | {k['per_step']:.1f} | {k['mean_us']:.2f} | {k['us_per_step']:.1f} |"
                  for k in prof["top_kernels"]]
        lines += ["", "| engine annotation | calls | mean us |", "|---|---|---|"]
        lines += [f"| {n} | {x['calls']} | {x['mean_us']:.0f} |" for n, x in prof["annotations_us_per_call"].items()]
    elif prof:
        lines.append(f"profile: {prof}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
