"""Batch-1 answer latency: what a playground user waits for, one question at a time, per serving variant.

    sqlgenie bench latency_b1 --adapter /tmp/gpuft/adapter --limit 60 \
        --variants vllm-plain launcher no-prefix ngram4 --out /tmp/lat.json                 # CPU (vLLM CPU)
    sqlgenie bench latency_b1 --adapter A --limit 24 --interleave --variants launcher cpu-bf16   # paired
    sqlgenie bench latency_b1 --adapter A --limit 216 \
        --variants vllm-plain launcher bf16 api1 ngram4 ngram_gpu4 --concurrent 64          # the H200

The model is the real fine-tuned embedded model (base + --adapter merged once, in bf16, with the product's
merge), the prompts are real text-to-SQL prompts: the OOD yardstick's questions (data/ood, grouped by schema
as a user asks them: same schema, next question) then the bundled test split's. Each variant starts one
replica, sends every question through the product's client (serving.text_to_sql.TextToSql.ask: the trained
prompt as token ids, greedy, SQL extracted and checked) one at a time, and records the wall time per answer.

Variants:  vllm-plain  `vllm serve` with vLLM's own defaults, queried directly (no launcher, no router)
           launcher    the launcher's per-device defaults (serving/plan.py), through the router
           no-prefix   launcher without --enable-prefix-caching;  no-spec  without n-gram speculation
           bf16 / fp8  launcher with FP8 weights + KV cache off / on (GPU; fp8 is the round-start default)
           api1        one API server (GPU)
           cpu-bf16    bf16, no speculation (the CPU default before 2026-11-29);  fp32  float32, no speculation
           ngram4/6/8  launcher + n-gram speculation (4, 6 or 8 tokens, lookup 2-4);  fp32-ngram4  both
           ngram_gpu4  launcher + vLLM's GPU n-gram proposer (keeps async scheduling)
           fp32-ngram3/6  float32 + n-gram speculation of 3 or 6 tokens;  replicas2  the launcher with 2 replicas
           cpu-bf16-r2    the CPU default before 2026-11-29 (bf16, no speculation) with 2 replicas
           seqs8 / graph-decode  launcher + --max-num-seqs 8 / CUDA graphs for whole decode steps only (GPU)
           no-stats / no-async   launcher + --disable-log-stats / --no-async-scheduling (a step profile since retired: docs/benchmarks.md)
           autotune    launcher + inductor graphs of their own for 1 and 2 tokens, GEMM kernels autotuned (GPU)
           split1/4    launcher with FA3 decode attention in CUDA graphs split over at most 1 / 4 KV blocks
                       (vLLM's default: 32, plus a kernel that combines the splits)
           piecewise   launcher with vLLM's default graph mode (`gpu_full_graphs=false`, the launcher's default)
           eager       launcher without CUDA graphs or compilation (--enforce-eager: the numerics reference)
           full-graph  launcher + full CUDA graphs for every batch, prefills too (`gpu_full_graphs=true`:
                       cudagraph_mode FULL; vLLM's default graphs a prefill piecewise, attention outside the graph)
           fp8-full    fp8 (the round-start default) + full CUDA graphs
           no-draft    launcher without the model's EAGLE draft head;  draft1/2/3/4  the head proposing 1-4 tokens
           cpu-draft   CPU: the draft head (3 tokens) instead of n-gram speculation;  draft6  6 tokens
           fp32-gpu / fp32-gpu-no-draft  float32 on a GPU with / without the draft head (are differing greedy
                       answers the draft's doing, or bf16 rounding of a batch of positions?)

--interleave serves every variant at once (one replica each; on a GPU its memory split between them) and asks
each question of each in turn, the order rotated per question: an H200 host's speed drifted by more between two
calls than the variants differed (docs/benchmarks.md, runs 12-13), and paired timings cancel that drift. The
table then adds the paired ratio: the median over questions of the reference's time / this one's (the reference:
`launcher` where it runs, else the first variant).

--draft DIR copies a draft head trained for this model (`python -m pipeline.export.draft_head MERGED`, or
`sqlgenie export` with export.draft_head) into the merged model, which the launcher then uses where it is on.

Prints a table last: p50 / mean / p90 seconds per answer, speed-up of the p50 over `launcher`, answers that
differ from `launcher`'s (each listed in the JSON), and answers/s at 1 client and at each --concurrent level;
then where the mean answer's time goes: the client's own work, the HTTP round trip beyond vLLM's own request
time (router, HTTP, API server), and vLLM's request time with its queue / prefill / decode parts (the
replica's /metrics histograms, read before and after the one-at-a-time pass).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from core import assets
from core.modelinfo import read_card
from core.procs import spawn, stop
from pipeline.data import ood
from serving import launch
from serving.config import load_serve_config
from serving.plan import free_ports, gpu_inventory, served_models
from serving.text_to_sql import TextToSql, tokenizer_for
from sql.prompt import PromptContract

# inductor compiles the graphs for 1 and 2 tokens (batch 1, batch 1 + 1 draft token) on their own and times the
# GEMM kernels it could use there (cuBLAS and its own Triton templates) instead of taking cuBLAS's pick for M = 1
AUTOTUNE = '{"compile_sizes":[1,2],"inductor_compile_config":{"max_autotune":true}}'
NGRAM = '{{"method":"{m}","num_speculative_tokens":{k},"prompt_lookup_min":2,"prompt_lookup_max":4}}'
VARIANTS = {
    "launcher": ([], []),
    "no-prefix": (["prefix_caching=false"], []),
    "no-spec": (["ngram_speculation=0"], []),
    "bf16": (["quantization=none", "kv_cache_dtype=auto"], []),
    "fp8": (["quantization=fp8", "kv_cache_dtype=fp8", "draft_speculation=0"], []),
    "piecewise": (["gpu_full_graphs=false"], []),
    "eager": ([], ["--enforce-eager"]),
    "no-draft": (["draft_speculation=0"], []),
    "draft6": (["draft_speculation=6"], []),
    "fp32-gpu": (["dtype=float32"], []),
    "fp32-gpu-no-draft": (["dtype=float32", "draft_speculation=0"], []),
    "draft1": (["draft_speculation=1"], []),
    "draft2": (["draft_speculation=2"], []),
    "draft3": (["draft_speculation=3"], []),
    "draft4": (["draft_speculation=4"], []),
    "cpu-draft": (["draft_speculation=3", "ngram_speculation=0"], []),
    "api1": (["gpu_api_servers=1"], []),
    "cpu-bf16": (["dtype=bfloat16", "ngram_speculation=0"], []),
    "fp32": (["dtype=float32", "ngram_speculation=0"], []),
    "ngram4": (["ngram_speculation=4"], []),
    "ngram6": (["ngram_speculation=6"], []),
    "ngram8": (["ngram_speculation=8"], []),
    "fp32-ngram4": (["dtype=float32", "ngram_speculation=4"], []),
    "ngram_gpu4": (["ngram_speculation=0"], ["--speculative-config", NGRAM.format(m="ngram_gpu", k=4)]),
    "fp32-ngram3": (["dtype=float32", "ngram_speculation=3"], []),
    "fp32-ngram6": (["dtype=float32", "ngram_speculation=6"], []),
    "replicas2": (["replicas=2"], []),
    "seqs8": ([], ["--max-num-seqs", "8"]),
    "graph-decode": ([], ["--compilation-config", '{"cudagraph_mode":"FULL_DECODE_ONLY"}']),
    "no-stats": ([], ["--disable-log-stats"]),
    "no-async": ([], ["--no-async-scheduling"]),
    "autotune": ([], ["--compilation-config", AUTOTUNE]),
    "split1": ([], ["--attention-config", '{"flash_attn_max_num_splits_for_cuda_graph":1}']),
    "split4": ([], ["--attention-config", '{"flash_attn_max_num_splits_for_cuda_graph":4}']),
    "full-graph": (["gpu_full_graphs=true"], []),
    "fp8-full": (["quantization=fp8", "kv_cache_dtype=fp8", "draft_speculation=0", "gpu_full_graphs=true"], []),
    "cpu-bf16-r2": (["dtype=bfloat16", "ngram_speculation=0", "replicas=2"], []),
}


def prompts(limit: int) -> list[tuple[str, str]]:
    """(schema, question): the OOD questions in file order (grouped by schema), then the test split's."""
    sch = ood.schemas()
    out = [(sch[q["db_id"]], q["question"]) for q in ood.questions()]
    if len(out) < limit:
        import pyarrow.parquet as pq

        t = pq.read_table(ROOT / "data" / "sqlgenie-sql" / "test.parquet", columns=["sql_context", "sql_prompt"])
        out += list(zip(t.column("sql_context").to_pylist(), t.column("sql_prompt").to_pylist()))
    return out[:limit]


def merged_model(base: str, adapter: str | None, dest: Path) -> Path:
    if not adapter:
        return assets.resolve(base)
    from pipeline.export.merge import merge_adapter  # heavy: torch, peft

    adapter_dir = Path(adapter)
    return merge_adapter(assets.resolve(base), adapter_dir, dest, tokenizer_for(adapter_dir), read_card(adapter_dir))


SERVER_HISTOGRAMS = {   # vLLM's own per-request timings (Prometheus histograms on a replica's /metrics)
    "server_e2e": "vllm:e2e_request_latency_seconds", "ttft": "vllm:time_to_first_token_seconds",
    "queue": "vllm:request_queue_time_seconds", "prefill": "vllm:request_prefill_time_seconds",
    "decode": "vllm:request_decode_time_seconds", "inference": "vllm:request_inference_time_seconds"}


SPEC_COUNTERS = ("vllm:spec_decode_num_drafts", "vllm:spec_decode_num_draft_tokens",
                 "vllm:spec_decode_num_accepted_tokens")   # speculative decoding: verify steps, proposed, accepted


def server_histograms(url: str) -> dict[str, tuple[float, float]]:
    """{histogram: (sum, count)} from a vLLM replica's /metrics, summed over label sets, and {counter: (value,
    0)} for the speculative-decoding counters; {} if unreachable."""
    import requests

    try:
        text = requests.get(url.rstrip("/") + "/metrics", timeout=10).text
    except requests.RequestException:
        return {}
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.split("{", 1)[0].split(" ", 1)[0], line.rsplit(" ", 1)[-1]
        for base in SERVER_HISTOGRAMS.values():
            if name in (base + "_sum", base + "_count"):
                out.setdefault(base, [0.0, 0.0])[name.endswith("_count")] += float(value)
        if name.endswith("_total") and name[: -len("_total")] in SPEC_COUNTERS:
            out.setdefault(name[: -len("_total")], [0.0, 0.0])[0] += float(value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def split_ms(before: dict, after: dict, answer_s: list[float], http_s: list[float]) -> dict:
    """Where the mean answer's time goes, ms: the client's own work (prompt, check, repair, format), the HTTP
    round trip beyond vLLM's own request time (router, HTTP, API server in and out), and vLLM's request time
    with its parts (queue, prefill, decode; time to first token)."""
    out = {"answer": 1e3 * statistics.fmean(answer_s), "http": 1e3 * statistics.fmean(http_s)}
    out["client_work"] = out["answer"] - out["http"]
    for key, metric in SERVER_HISTOGRAMS.items():
        if metric in after and metric in before and after[metric][1] > before[metric][1]:
            (s1, c1), (s0, c0) = after[metric], before[metric]
            out[key] = 1e3 * (s1 - s0) / (c1 - c0)
    if "server_e2e" in out:
        out["outside_vllm"] = out["http"] - out["server_e2e"]
    drafts, proposed, accepted = (after.get(c, (0, 0))[0] - before.get(c, (0, 0))[0] for c in SPEC_COUNTERS)
    if drafts > 0:   # tokens per verify step = 1 + accepted draft tokens per step
        out["spec_accepted_per_step"] = accepted / drafts
        out["spec_acceptance_rate"] = accepted / max(proposed, 1)
    return out


class _Timed:
    """The product's client with its HTTP round trips timed per answer (what the client sees of the server)."""

    def __init__(self, t2s: TextToSql):
        self.t2s, self.http = t2s, []
        self._complete = t2s.client.complete

    def __enter__(self) -> "_Timed":
        def timed_complete(*a, **kw):
            out = self._complete(*a, **kw)
            self.http[-1] += out.latency_s
            return out

        self.t2s.client.complete = timed_complete
        return self

    def __exit__(self, *_) -> None:
        self.t2s.client.complete = self._complete

    def ask(self, schema: str, question: str):
        """One answer: (seconds, Answer)."""
        self.http.append(0.0)
        t0 = time.perf_counter()
        ans = self.t2s.ask(schema, question)
        return time.perf_counter() - t0, ans


def summary(lat: list[float], answers: list, http: list[float], before: dict, after: dict) -> dict:
    """p50 / mean / p90, the answers and the split of the mean answer from one batch-1 pass."""
    lat_sorted = sorted(lat)
    return {"n": len(lat), "p50_s": statistics.median(lat), "mean_s": statistics.fmean(lat),
            "p90_s": lat_sorted[int(0.9 * (len(lat) - 1))],
            "completion_tokens": sum(a.completion_tokens for a in answers), "answers": [a.raw for a in answers],
            "latencies_s": lat, "split_ms": split_ms(before, after, lat, http)}


def throughput(t2s: TextToSql, rows: list[tuple[str, str]], concurrent: list[int], res: dict) -> None:
    """answers/s with c clients asking back to back for each c (the batch-1 pass is c = 1), into res["at"]."""
    res["at"] = {}
    for c in concurrent:
        work = rows * max(1, (2 * c) // len(rows) + 1)
        t0 = time.perf_counter()
        try:
            with ThreadPoolExecutor(c) as pool:
                done = list(pool.map(lambda r: t2s.ask(*r).completion_tokens, work[: max(2 * c, 16)]))
        except Exception as e:  # noqa: BLE001 - e.g. a slow variant timing out at 64 clients: keep the rest
            res["at"][c] = {"answers_per_s": float("nan"), "tokens_per_s": float("nan"), "error": str(e)[:300]}
            continue
        wall = time.perf_counter() - t0
        res["at"][c] = {"answers_per_s": len(done) / wall, "tokens_per_s": sum(done) / wall}
    if concurrent:    # the last level, under the names earlier runs' JSON used
        res.update(concurrent=concurrent[-1], **{k: v for k, v in res["at"][concurrent[-1]].items() if k != "error"})
    res["at"][1] = {"answers_per_s": res["n"] / sum(res["latencies_s"]),
                    "tokens_per_s": res["completion_tokens"] / sum(res["latencies_s"])}


def warm(t2s: TextToSql, rows: list[tuple[str, str]]) -> None:
    for schema, q in rows[:3]:  # graphs, first-request paths
        t2s.ask(schema, q)


def measure(t2s: TextToSql, rows: list[tuple[str, str]], concurrent: list[int], replica_url: str = "") -> dict:
    warm(t2s, rows)
    with _Timed(t2s) as timed:
        before = server_histograms(replica_url) if replica_url else {}
        lat, answers = zip(*(timed.ask(schema, q) for schema, q in rows))
        after = server_histograms(replica_url) if replica_url else {}
    res = summary(list(lat), list(answers), timed.http, before, after)
    throughput(t2s, rows, concurrent, res)
    return res


def interleaved(names: list[str], model_dir: Path, rows: list[tuple[str, str]], concurrent: list[int]) -> dict:
    """Every variant served at once (one replica each, its own ports; on a GPU they share it, memory split), and
    each question asked of every variant in turn, the order rotated per question: a host that speeds up or
    slows down over minutes (the H200 hosts moved one variant's p50 by 25% between two calls) then weighs on
    every variant alike, so their ratio is paired. The c-client passes run after, one variant at a time."""
    share = f"gpu_memory_utilization={0.85 / len(names):.2f}"
    results: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        served = {n: stack.enter_context(served_variant(n, model_dir, slot=i, overrides=[share] if gpu_inventory()
                                                        else [])) for i, n in enumerate(names)}
        for _, t2s in served.values():
            warm(t2s, rows)
        timed = {n: stack.enter_context(_Timed(t2s)) for n, (_, t2s) in served.items()}
        urls = {n: st["replicas"][0]["url"] for n, (st, _) in served.items()}
        before = {n: server_histograms(u) for n, u in urls.items()}
        got: dict[str, list] = {n: [] for n in names}
        for j, (schema, q) in enumerate(rows):
            for n in names[j % len(names):] + names[: j % len(names)]:
                got[n].append(timed[n].ask(schema, q))
        after = {n: server_histograms(u) for n, u in urls.items()}
        for n, (st, t2s) in served.items():
            lat, answers = zip(*got[n])
            results[n] = {"flags": " ".join(st["replicas"][0].get("args", [])[8:]),
                          "reasons": st["replicas"][0].get("reasons"), "interleaved": names,
                          **summary(list(lat), list(answers), timed[n].http, before[n], after[n])}
        for n, (_, t2s) in served.items():
            throughput(t2s, rows, concurrent, results[n])
    return results


def paired_speedup(ref: list[float], other: list[float]) -> float:
    """The median over questions of ref's time / other's time for the same question (interleaved runs)."""
    return statistics.median(r / o for r, o in zip(ref, other))


def each_variant(variants: list[str], out: str | None, run, brief, trace_first: bool) -> dict[str, dict]:
    """{variant: run(variant, trace_dir)} in order, a profiler trace folder for the first only (`trace_first`); a
    variant that fails keeps its error and the others their figures; `brief(result)` is printed and the JSON
    written to `out` after each."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as d:
        for i, v in enumerate(variants):
            t0 = time.time()
            try:
                results[v] = run(v, Path(d) / "trace" if i == 0 and trace_first else None)
            except Exception as e:  # noqa: BLE001 - one variant failing must not lose the others' figures
                results[v] = {"error": f"{type(e).__name__}: {e}"[:600]}
            results[v]["wall_s"] = time.time() - t0
            print(f"{v}: {brief(results[v])}", flush=True)
            if out:
                Path(out).write_text(json.dumps(results, indent=1))
    return results


def run_variant(name: str, model_dir: Path, rows, concurrent: list[int]) -> dict:
    if name == "vllm-plain":
        port = free_ports(1)[0]   # never a stale server's port: that one would be measured instead
        cmd = [launch.vllm_python(), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", "plain", "--host", "127.0.0.1", "--port", str(port)]
        log = Path(tempfile.gettempdir()) / "latency-plain.log"
        env = {"VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
        if not gpu_inventory():  # vLLM CPU reserves 92% of RAM for KV by default: its documented 1-variable setup
            env["VLLM_CPU_KVCACHE_SPACE"] = "1"
        _, rec = spawn(cmd, env, log, role="plain vLLM")
        try:
            launch.wait_ready(rec, f"http://127.0.0.1:{port}", str(log), "plain vLLM", 900)
            card = read_card(model_dir)
            t2s = TextToSql(f"http://127.0.0.1:{port}", model_dir, PromptContract(**card.get("contract", {})),
                            model="plain", timeout_s=900)
            return {"flags": "vLLM defaults", **measure(t2s, rows, concurrent, f"http://127.0.0.1:{port}")}
        finally:
            stop(rec, 10)
    with served_variant(name, model_dir) as (state, t2s):
        flags = " ".join(state["replicas"][0].get("args", [])[8:]) if state["replicas"][0].get("args") else ""
        return {"flags": flags, "reasons": state["replicas"][0].get("reasons"),
                **measure(t2s, rows, concurrent, state["replicas"][0]["url"] if len(state["replicas"]) == 1 else "")}


@contextlib.contextmanager
def served_variant(name: str, model_dir: Path, extra_args: list[str] | None = None, deployment: str = "latency",
                   slot: int = 0, overrides: list[str] | None = None):
    """`model_dir` served through the launcher with VARIANTS[name]'s settings (+ overrides, extra_args), one
    replica behind the router; yields (deployment state, the product's client on the router). Stopped on the way
    out. Slot i > 0 takes its own ports and deployment name, so several variants can be up at once."""
    sets, extra = VARIANTS[name]
    if slot:
        deployment = f"{deployment}{slot}"
    tree = {"model": str(model_dir), "name": deployment, "replicas": 1, "base_port": 8470 + 30 * slot,
            "router_port": 8490 + 30 * slot, "metrics_port": 8491 + 30 * slot, "warmup_requests": 2,
            "extra_args": list(extra) + list(extra_args or [])}
    cfg = load_serve_config(tree=tree, overrides=list(sets) + list(overrides or []), source=Path(sys.argv[0]).stem)
    state = launch.up(cfg, progress=lambda s: None)
    try:
        m = served_models(cfg)[deployment]
        yield state, TextToSql(state["router"]["url"], m["tokenizer"], PromptContract(**m["contract"]),
                               model=deployment, timeout_s=900)
    finally:
        launch.down(deployment)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--adapter", help="LoRA adapter to merge into --base (the fine-tuned model)")
    ap.add_argument("--limit", type=int, default=216)
    ap.add_argument("--variants", nargs="+", default=["vllm-plain", "launcher", "no-prefix", "ngram4"])
    ap.add_argument("--concurrent", type=int, nargs="*", default=[],
                    help="also answers/s with this many clients (one or more levels, e.g. 16 64)")
    ap.add_argument("--draft", help="a draft head folder trained earlier for this model (copied into the merged model)")
    ap.add_argument("--interleave", action="store_true",
                    help="serve every variant at once and ask each question of each in turn (paired timings on a "
                         "host whose speed drifts; launcher variants only)")
    ap.add_argument("--out")
    a = ap.parse_args()
    # a stop (SIGTERM, e.g. a device call's time limit) unwinds like Ctrl-C: each variant's servers are stopped
    signal.signal(signal.SIGTERM, _interrupt)
    unknown = [v for v in a.variants if v != "vllm-plain" and v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}: choose from vllm-plain {' '.join(VARIANTS)}")
    if a.interleave and ("vllm-plain" in a.variants or len(set(a.variants)) < 2):
        sys.exit("--interleave needs two or more different launcher variants (vllm-plain is started outside the "
                 "launcher): e.g. --variants launcher fp8")
    if a.draft and not a.adapter:
        sys.exit("--draft needs --adapter: the head is copied into the merged model's folder")
    rows = prompts(a.limit)
    results = {}
    with tempfile.TemporaryDirectory() as d:
        model_dir = merged_model(a.base, a.adapter, Path(d) / "merged")
        if a.draft:
            import shutil

            shutil.copytree(a.draft, model_dir / "draft")
        if a.interleave:
            t0 = time.time()
            try:
                results = interleaved(a.variants, model_dir, rows, a.concurrent)
            except Exception as e:  # noqa: BLE001 - say what failed, in the JSON too
                import traceback

                traceback.print_exc()
                results = {v: {"error": f"{type(e).__name__}: {e}"[:600]} for v in a.variants}
            for v in results:
                results[v]["wall_s"] = time.time() - t0
        else:
            results = each_variant(
                a.variants, a.out, lambda v, _: run_variant(v, model_dir, rows, a.concurrent),
                lambda r: json.dumps({k: x for k, x in r.items() if k not in ("answers", "reasons", "latencies_s")})[:400],
                trace_first=False)
    ref_name = "launcher" if "launcher" in results else a.variants[0]
    ref = results.get(ref_name, {})
    levels = [1, *a.concurrent]
    paired = f"paired p50 vs {ref_name} | " if a.interleave else ""
    lines = [f"| variant | p50 s | mean s | p90 s | p50 vs {ref_name} | {paired}answers differing from {ref_name} | "
             + " | ".join(f"answers/s at {c}" for c in levels) + " |", "|---" * (6 + bool(paired) + len(levels)) + "|"]
    for v, r in results.items():
        if "error" in r:
            lines.append(f"| {v} | error: {r['error'][:120]} |" + " |" * (4 + len(levels)))
            continue
        diff = [i for i, (x, y) in enumerate(zip(r["answers"], ref.get("answers", []))) if x != y]
        r[f"differs_from_{ref_name}"] = diff
        if paired and ref.get("latencies_s"):
            r["paired_speedup"] = paired_speedup(ref["latencies_s"], r["latencies_s"])
        lines.append(f"| {v} | {r['p50_s']:.4f} | {r['mean_s']:.4f} | {r['p90_s']:.4f} | "
                     f"{ref['p50_s'] / r['p50_s'] if ref.get('p50_s') else float('nan'):.2f}x | "
                     + (f"{r.get('paired_speedup', float('nan')):.2f}x | " if paired else "")
                     + f"{len(diff)}/{r['n']} | "
                     + " | ".join(f"{r['at'][c]['answers_per_s']:.2f}" for c in levels) + " |")
    parts = ["answer", "client_work", "outside_vllm", "server_e2e", "queue", "prefill", "decode", "ttft",
             "spec_accepted_per_step"]
    lines += ["", "| variant | mean ms per answer | client's own work | router + HTTP + API server | vLLM request "
              "(e2e) | queue | prefill | decode | time to first token | draft tokens accepted per step |",
              "|---" * 10 + "|"]
    for v, r in results.items():
        sp = r.get("split_ms") or {}
        if sp:
            lines.append(f"| {v} | " + " | ".join(f"{sp[k]:.2f}" if k == "spec_accepted_per_step" and k in sp else
                                                  f"{sp[k]:.1f}" if k in sp else "-" for k in parts) + " |")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
