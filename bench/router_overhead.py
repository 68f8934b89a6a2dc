"""Router overhead, measured paired: the same short request sent to one replica directly and through
vllm-router in front of it, alternately, many times; the overhead is the median of the paired differences.

A concurrency sweep at batch 1 (bench/serving_sweep.py) sends two long requests per target, so on a CPU its
latency p50 moves by tens of ms between runs: far more than a proxy hop costs. Here each request asks for
one token of a fixed short prompt (prefix-cached after the first), so a request is ~10-100 ms and steady,
and the order alternates (direct first, then routed first) so that drift cancels.

    sqlgenie bench router_overhead --model embedded:smollm2-135m-instruct --pairs 200    # CPU
    sqlgenie bench router_overhead --model /tmp/llama8b-cfg --extra=--load-format=dummy   # a GPU
Prints one table last; --out writes the raw latencies as JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(session, url: str, body: dict) -> float:
    t0 = time.perf_counter()
    r = session.post(url + "/v1/completions", json=body, timeout=60)
    dt = time.perf_counter() - t0
    r.raise_for_status()
    if not r.json().get("choices"):
        raise RuntimeError(f"{url}: no choices in {r.text[:200]}")
    return dt


def paired(direct: str, routed: str, model: str, pairs: int, warmup: int = 10) -> dict:
    """Latencies (s) of `pairs` direct/routed pairs, alternating which goes first."""
    import requests

    body = {"model": model, "prompt": "SELECT name FROM employees WHERE department = 'IT' ORDER BY salary DESC",
            "max_tokens": 1, "temperature": 0.0}
    s_direct, s_routed = requests.Session(), requests.Session()   # keep-alive both ways, like a real client
    for _ in range(warmup):
        _timed(s_direct, direct, body)
        _timed(s_routed, routed, body)
    d, r = [], []
    for i in range(pairs):
        if i % 2:
            r.append(_timed(s_routed, routed, body))
            d.append(_timed(s_direct, direct, body))
        else:
            d.append(_timed(s_direct, direct, body))
            r.append(_timed(s_routed, routed, body))
    return {"direct_s": d, "routed_s": r}


def summary(res: dict) -> dict:
    d, r = res["direct_s"], res["routed_s"]
    diffs = [b - a for a, b in zip(d, r)]
    q = statistics.quantiles(diffs, n=4)
    return {"pairs": len(diffs), "direct_p50_ms": 1e3 * statistics.median(d), "routed_p50_ms": 1e3 * statistics.median(r),
            "overhead_p50_ms": 1e3 * statistics.median(diffs), "overhead_iqr_ms": (1e3 * q[0], 1e3 * q[2])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--extra", action="append", default=[], help="vLLM flag, e.g. --extra=--load-format=dummy")
    ap.add_argument("--out")
    a = ap.parse_args()

    from serving import launch
    from serving.config import ServeConfig

    cfg = ServeConfig(model=a.model, name="overhead", replicas=1, base_port=8320, router_port=8396,
                             metrics_port=8397, warmup_requests=2,
                             extra_args=[x for e in a.extra for x in e.split("=", 1)])
    t0 = time.time()
    state = launch.up(cfg)
    try:
        print(f"deployment up in {time.time() - t0:.0f} s", flush=True)
        direct = f"http://127.0.0.1:{state['replicas'][0]['port']}"
        res = paired(direct, state["router"]["url"], cfg.name, a.pairs)
        from serving.stats import replica_snapshot

        snap = replica_snapshot(direct)   # the dashboard's view of the replica (one or several API servers)
        print(f"replica metrics: up={snap.get('up')} requests={snap.get('requests')} "
              f"generation_tokens={snap.get('generation_tokens')}", flush=True)
        res["replica_metrics"] = snap
    finally:
        launch.down(cfg.name)
    s = summary(res)
    if a.out:
        Path(a.out).write_text(json.dumps({"summary": s, **res}, indent=2))
    print("\n| pairs | direct p50 ms | routed p50 ms | overhead p50 ms (paired) | overhead IQR ms |\n|---|---|---|---|---|")
    print(f"| {s['pairs']} | {s['direct_p50_ms']:.2f} | {s['routed_p50_ms']:.2f} | {s['overhead_p50_ms']:+.2f} | "
          f"{s['overhead_iqr_ms'][0]:+.2f} .. {s['overhead_iqr_ms'][1]:+.2f} |")


if __name__ == "__main__":
    main()
