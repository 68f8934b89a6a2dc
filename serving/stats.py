"""Serving statistics from vLLM's and vllm-router's Prometheus /metrics, sampled into a time series.

    python -m serving.stats --name sqlgenie --interval 2      # appends to <home>/serve/<name>/stats.jsonl
    from serving.stats import snapshot, rates

Per replica: generated and prompt tokens, finished requests, running and waiting requests, mean
end-to-end latency and TTFT; for the router: requests routed per worker, worker health. `rates(a, b)`
turns two snapshots into tokens/s, requests/s and the latency of the requests finished in between.
`serving up` starts the sampler beside the router; the dashboard only reads stats.jsonl.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict

import requests

from serving import deployments as D
from serving.config import DeploymentError

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+([-+0-9.eEinfNa]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if m:
            out.append((m.group(1), dict(_LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def _sum(samples, name: str, **match) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in match.items()))


def replica_snapshot(url: str, timeout: float = 1.5) -> dict:
    try:
        s = parse_metrics(requests.get(url + "/metrics", timeout=timeout).text)
    except requests.RequestException:
        return {"up": False}
    return {"up": True,
            "generation_tokens": _sum(s, "vllm:generation_tokens_total"),
            "prompt_tokens": _sum(s, "vllm:prompt_tokens_total"),
            "requests": sum(v for n, lab, v in s if n == "vllm:request_success_total"
                            and lab.get("finished_reason") in ("stop", "length")),
            "running": _sum(s, "vllm:num_requests_running"), "waiting": _sum(s, "vllm:num_requests_waiting"),
            "e2e_sum": _sum(s, "vllm:e2e_request_latency_seconds_sum"),
            "e2e_count": _sum(s, "vllm:e2e_request_latency_seconds_count"),
            "ttft_sum": _sum(s, "vllm:time_to_first_token_seconds_sum"),
            "ttft_count": _sum(s, "vllm:time_to_first_token_seconds_count")}


def router_snapshot(metrics_url: str, timeout: float = 1.5) -> dict:
    try:
        s = parse_metrics(requests.get(metrics_url, timeout=timeout).text)
    except requests.RequestException:
        return {"up": False}
    per_worker: dict[str, dict] = defaultdict(dict)
    for n, lab, v in s:
        w = lab.get("worker")
        if w and n == "vllm_router_processed_requests_total":
            per_worker[w]["routed"] = v
        elif w and n == "vllm_router_worker_health":
            per_worker[w]["healthy"] = bool(v)
    return {"up": True, "requests": _sum(s, "vllm_router_requests_total"), "workers": dict(per_worker),
            "duration_sum": _sum(s, "vllm_router_generate_duration_seconds_sum"),
            "duration_count": _sum(s, "vllm_router_generate_duration_seconds_count")}


def snapshot(state: dict) -> dict:
    return {"t": time.time(),
            "replicas": {str(r["index"]): replica_snapshot(r["url"]) for r in state["replicas"]},
            "router": router_snapshot(state["router"]["metrics"])}


def rates(a: dict, b: dict) -> dict:
    """Per replica and in total: tokens/s, requests/s, mean latency of requests finished between a and b."""
    dt = max(b["t"] - a["t"], 1e-6)
    out: dict = {"t": b["t"], "replicas": {}}
    tot = defaultdict(float)
    for k, rb in b["replicas"].items():
        ra = a["replicas"].get(k, {})
        if not (rb.get("up") and ra.get("up")):
            out["replicas"][k] = {"up": bool(rb.get("up"))}
            continue
        d = {f: max(rb[f] - ra[f], 0.0) for f in ("generation_tokens", "prompt_tokens", "requests", "e2e_sum",
                                                  "e2e_count", "ttft_sum", "ttft_count")}
        row = {"up": True, "tokens_per_s": d["generation_tokens"] / dt, "requests_per_s": d["requests"] / dt,
               "running": rb["running"], "waiting": rb["waiting"],
               "latency_s": d["e2e_sum"] / d["e2e_count"] if d["e2e_count"] else None,
               "ttft_s": d["ttft_sum"] / d["ttft_count"] if d["ttft_count"] else None}
        out["replicas"][k] = row
        for f in ("tokens_per_s", "requests_per_s", "running", "waiting"):
            tot[f] += row[f]
    out["total"] = dict(tot)
    ra, rb = a.get("router", {}), b.get("router", {})
    if ra.get("up") and rb.get("up"):
        dc = rb["duration_count"] - ra["duration_count"]
        out["router"] = {"requests_per_s": max(rb["requests"] - ra["requests"], 0) / dt,
                         "latency_s": (rb["duration_sum"] - ra["duration_sum"]) / dc if dc > 0 else None,
                         "workers": rb["workers"]}
    return out


def sample_forever(name: str, interval: float = 2.0, keep: int = 5000) -> None:
    path = D.state_dir(name) / "stats.jsonl"
    prev = None
    lines = 0
    while True:
        try:
            state = D.load(name)
        except DeploymentError:  # the deployment is gone: the sampler ends with it
            return
        if state.get("phase") in ("stopping", "stopped"):
            return
        snap = snapshot(state)
        if prev is not None:
            with path.open("a") as f:
                f.write(json.dumps(rates(prev, snap)) + "\n")
            lines += 1
            if lines > keep * 2:  # keep the file bounded: the last `keep` points
                tail = path.read_text().splitlines()[-keep:]
                path.write_text("\n".join(tail) + "\n")
                lines = keep
        prev = snap
        time.sleep(interval)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="sqlgenie")
    ap.add_argument("--interval", type=float, default=2.0)
    a = ap.parse_args()
    sample_forever(a.name, a.interval)
