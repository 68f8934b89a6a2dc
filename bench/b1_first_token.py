"""Where the first token of a batch-1 answer goes: request overhead, the cached schema, the new question, the router.

    PYTHONPATH=/tmp/vsite:/tmp/site:$PWD python3 bench/b1_first_token.py MODEL_DIR --dummy \
        --variants launcher full-graph --out /tmp/out/first-token.json                       # the H200
    bench/device_session.sh PHASE=first [.gpuprof]                                           # the same, one call
    .venv/bin/python bench/b1_first_token.py <merged model> --variants launcher --repeats 5  # vLLM CPU

bench/b1_step_profile.py measured a 1-token answer to a 1,427-token prompt whose every block was cached at
~15 ms on an H200, ten decode steps' worth, for a forward over a handful of tokens. A playground answer pays it
once per question: ~15-20% of an answer. This bench takes that time apart, per variant (bench/latency_b1.py's
VARIANTS: the launcher's flags plus a change), one replica through the launcher, greedy, max_tokens 1, the
median of --repeats answers per case:

  tiny         an 8-token prompt, straight to the replica, bare body: what any request costs
  cached       the whole real prompt again (every full block cached), straight to the replica, bare body
  new-question the same schema with a question never asked before (the product's case: the schema's blocks are
               cached, the question's ~20-40 tokens are not), straight to the replica, bare body
  product      the same with the product's body (stop at the model's EOS text, return_token_ids: the answer
               carries the prompt's ids back so the client can check the contract)
  routed       the product's body through vllm-router, as the playground sends it
  answer       routed, 1 + --tokens tokens (ignore_eos): the first token's share of an answer

vLLM's own histograms (/metrics: time to first token from the API server's arrival, queue, prefill = scheduled
to first token) are read around every case, so each case also says how much of it is outside vLLM's request
time (HTTP, JSON, the router). For the first variant, vLLM's torch profiler records --profile-answers
new-question answers: per answer the GPU's kernels, busy time, CUDA-graph launches and the span from its first to
its last kernel. Prints a table last.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import b1_step_profile as steps  # noqa: E402
import latency_b1  # noqa: E402

CASES = ("tiny", "cached", "new-question", "product", "routed", "answer")
GAP_US = 2000.0   # kernels further apart than this belong to different answers (requests are one at a time)


def timed_post(url: str, body: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = steps.post(url, "/v1/completions", body).json()
    return time.perf_counter() - t0, out


class Questions:
    """Prompt ids of one schema with a question never asked before, as often as wanted: the OOD questions of the
    schema, then the same again with a numbered clause, so no question's tokens are in the prefix cache."""

    def __init__(self, t2s, rows: list[tuple[str, str]]):
        self.t2s, self.schema = t2s, rows[0][0]
        self.questions = [q for s, q in rows if s == self.schema]
        self.n = 0

    def next_ids(self) -> list[int]:
        q = self.questions[self.n % len(self.questions)]
        if self.n >= len(self.questions):
            q = f"{q.rstrip('?. ')} (case {self.n})?"
        self.n += 1
        return self.t2s.prompt(self.schema, q)[1]


def case_body(case: str, model: str, ids: list[int], eos_text: str, tokens: int) -> dict:
    body = {"model": model, "prompt": ids, "max_tokens": 1, "temperature": 0}
    if case in ("product", "routed", "answer"):
        body.update(stop=[eos_text], return_token_ids=True)
    if case == "answer":
        body.update(max_tokens=1 + tokens, ignore_eos=True)
    return body


def run_case(case: str, replica: str, router: str, model: str, questions: Questions, cached_ids: list[int],
             eos_text: str, tokens: int, repeats: int) -> dict:
    url = router if case in ("routed", "answer") else replica
    walls = []
    before = latency_b1.server_histograms(replica)
    for _ in range(repeats):
        if case == "tiny":
            ids = cached_ids[:8]
        elif case == "cached":
            ids = cached_ids
        else:
            ids = questions.next_ids()
        wall, out = timed_post(url, case_body(case, model, ids, eos_text, tokens))
        got = out["usage"]["completion_tokens"]
        want = 1 + tokens if case == "answer" else 1
        if got != want:
            raise RuntimeError(f"{case}: asked for {want} tokens, got {got}")
        walls.append(wall)
    after = latency_b1.server_histograms(replica)
    res = {"median_ms": 1e3 * statistics.median(walls), "mean_ms": 1e3 * statistics.fmean(walls),
           "prompt_tokens": out["usage"]["prompt_tokens"]}
    for key in ("ttft", "queue", "prefill", "server_e2e"):
        metric = latency_b1.SERVER_HISTOGRAMS[key]
        if metric in after and metric in before and after[metric][1] > before[metric][1]:
            (s1, c1), (s0, c0) = after[metric], before[metric]
            res[f"server_{key}_ms" if key != "server_e2e" else "server_e2e_ms"] = 1e3 * (s1 - s0) / (c1 - c0)
    if "server_e2e_ms" in res:
        res["outside_vllm_ms"] = res["mean_ms"] - res["server_e2e_ms"]
    return res


def answer_clusters(events: list[dict]) -> dict:
    """The trace's kernels split into answers (gaps over GAP_US): per answer the kernels, GPU busy time, span
    from first to last kernel, and CUDA-graph launches (host side) inside that span."""
    kernels = sorted((e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"), key=lambda e: e["ts"])
    launches = sorted(e["ts"] for e in events if e.get("name") == "cudaGraphLaunch")
    clusters: list[list[dict]] = []
    for k in kernels:
        if clusters and k["ts"] - (clusters[-1][-1]["ts"] + clusters[-1][-1].get("dur", 0)) <= GAP_US:
            clusters[-1].append(k)
        else:
            clusters.append([k])
    rows = []
    for c in clusters:
        busy, end = 0.0, c[0]["ts"]
        for k in c:
            s, e = k["ts"], k["ts"] + k.get("dur", 0)
            if e > end:
                busy += e - max(s, end)
                end = e
        start = c[0]["ts"]
        rows.append({"kernels": len(c), "busy_us": busy, "span_us": end - start,
                     "graph_launches": sum(1 for t in launches if start - GAP_US <= t <= end)})
    if not rows:
        return {"error": "the trace holds no GPU kernels"}
    keys = ("kernels", "busy_us", "span_us", "graph_launches")
    return {"answers": len(rows), "median": {k: statistics.median(r[k] for r in rows) for k in keys}, "each": rows}


def run_variant(name: str, model_dir: Path, dummy: bool, tokens: int, repeats: int, profile_answers: int,
                trace_dir: Path | None) -> dict:
    extra = steps.server_extra(dummy, trace_dir)
    with latency_b1.served_variant(name, model_dir, extra, deployment="first") as (state, t2s):
        rows = latency_b1.prompts(40)
        questions = Questions(t2s, rows)
        cached_ids = t2s.prompt(*rows[0])[1]
        replica, router = state["replicas"][0]["url"], state["router"]["url"]
        eos = t2s.tokenizer.eos_token
        for _ in range(3):     # warm: graphs, the schema's blocks in the prefix cache, the router's connections
            timed_post(replica, case_body("answer", "first", cached_ids, eos, tokens))
            timed_post(router, case_body("routed", "first", questions.next_ids(), eos, tokens))
        res = {"flags": " ".join(state["replicas"][0].get("args", [])[8:]), "cases": {}}
        for case in CASES:
            res["cases"][case] = run_case(case, replica, router, "first", questions, cached_ids, eos, tokens,
                                          repeats)
        if trace_dir is not None:
            since = time.time()
            steps.post(replica, "/start_profile")
            for _ in range(profile_answers):
                timed_post(replica, case_body("new-question", "first", questions.next_ids(), eos, tokens))
                time.sleep(0.02)     # a clear gap between answers in the trace
            steps.post(replica, "/stop_profile", timeout=600)
            res["profile"] = answer_clusters(steps.trace_events(trace_dir, since))
        return res


def table(results: dict) -> str:
    lines = ["| variant | " + " | ".join(CASES) + " |", "|---|" + "---|" * len(CASES)]
    for v, r in results.items():
        if "error" in r:
            lines.append(f"| {v} | error: {r['error'][:200]} |" + " |" * (len(CASES) - 1))
            continue
        lines.append(f"| {v} | " + " | ".join(f"{r['cases'][c]['median_ms']:.1f}" for c in CASES) + " |")
    lines += ["", "median ms per 1-token answer (answer: 1 + T tokens). vLLM's own view, mean ms per case "
              "(time to first token / queue / prefill; outside vLLM = client wall - vLLM's e2e):",
              "| variant | case | prompt tokens | wall | ttft | queue | prefill | outside vLLM |", "|---|---|---|---|---|---|---|---|"]
    for v, r in results.items():
        for c, x in r.get("cases", {}).items():
            f = [f"{x[k]:.2f}" if k in x else "-" for k in
                 ("mean_ms", "server_ttft_ms", "server_queue_ms", "server_prefill_ms", "outside_vllm_ms")]
            lines.append(f"| {v} | {c} | {x['prompt_tokens']} | " + " | ".join(f) + " |")
    for v, r in results.items():
        prof = r.get("profile")
        if prof and "median" in prof:
            m = prof["median"]
            lines += ["", f"profile of `{v}`, {prof['answers']} new-question answers of 1 token (medians per answer):",
                      "| kernels | GPU busy us | first to last kernel us | CUDA-graph launches |", "|---|---|---|---|",
                      f"| {m['kernels']:.0f} | {m['busy_us']:.0f} | {m['span_us']:.0f} | {m['graph_launches']:.0f} |"]
    return "\n".join(lines)


def main() -> None:
    a = steps.variant_args(["launcher", "full-graph"], "decode steps in the `answer` case", 20, 6)
    results = latency_b1.each_variant(
        a.variants, a.out,
        lambda v, trace: run_variant(v, Path(a.model), a.dummy, a.tokens, a.repeats, a.profile_answers, trace),
        lambda r: {c: round(x["median_ms"], 2) for c, x in r.get("cases", {}).items()} or r.get("error"),
        bool(a.profile_answers))
    print(table(results))


if __name__ == "__main__":
    main()
