"""Serving benchmark: concurrency sweep direct to one replica vs through vllm-router, 1 vs N replicas.

    sqlgenie bench serving_sweep --model .sqlgenie/runs/smollm2-cpu/export/merged --replicas 2 \
        --concurrency 1 4 16 64 --max-tokens 32                     # CPU: one replica per core
    sqlgenie bench serving_sweep --model /tmp/llama8b-cfg --replicas 1 --concurrency 1 64 256 \
        --max-tokens 128 --extra=--load-format=dummy --procs 4     # the H200 (device), launcher defaults

Starts the deployment with serving.launch (the launcher's computed defaults: FP8 on Hopper), plus a
second vllm-router in front of replica 0 alone, then sweeps: replica 0 direct, router over replica 0
(router overhead = the difference), and with N >= 2 the router over all replicas (scaling). Prints one
table per target and a summary last; --out writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests", type=int, default=0, help="per level (at least 2 x concurrency)")
    ap.add_argument("--prompt-tokens", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--extra", action="append", default=[], help="vLLM flag, e.g. --extra=--load-format=dummy")
    ap.add_argument("--set", action="append", default=[], help="ServeConfig override key=value")
    ap.add_argument("--procs", type=int, default=1, help="client processes per level (4 for 256 concurrent on a GPU)")
    ap.add_argument("--out")
    ap.add_argument("--existing", help="sweep a running deployment by name (e.g. a serve job's) instead of starting one")
    a = ap.parse_args()

    from bench.load import sweep, table
    from core.procs import spawn, stop
    from serving import deployments as D
    from serving import launch
    from serving.config import ServeConfig, load_serve_config

    tree = {"model": a.model, "name": "bench", "replicas": a.replicas, "base_port": 8300, "router_port": 8390,
            "metrics_port": 8391, "warmup_requests": 2, "extra_args": [x for e in a.extra for x in e.split("=", 1)]}
    cfg = load_serve_config(tree=tree, overrides=a.set, source="serving_sweep")
    t0 = time.time()
    if a.existing:
        state = D.load(a.existing)
        cfg = ServeConfig(**state["config"])
    else:
        state = launch.up(cfg)
    print(f"deployment up in {time.time() - t0:.0f} s", flush=True)
    rep0 = f"http://127.0.0.1:{state['replicas'][0]['port']}"
    solo_log = D.state_dir(cfg.name) / "logs" / "router-solo.log"
    _, solo = spawn(launch.router_command(cfg, [rep0], "127.0.0.1", 8392, 8393), {}, solo_log, role="solo router")
    results: dict[str, list] = {}
    try:
        launch.wait_ready(solo, "http://127.0.0.1:8392", str(solo_log), "router (replica 0 only)", 60)
        targets = [("replica0-direct", rep0), ("router-1-replica", "http://127.0.0.1:8392")]
        n_rep = len(state["replicas"])
        if n_rep >= 2:
            targets.append((f"router-{n_rep}-replicas", state["router"]["url"]))
        for label, url in targets:
            levels = sweep(url, cfg.name, a.concurrency, a.requests or None, a.prompt_tokens, a.max_tokens,
                           procs=a.procs)
            results[label] = [asdict(lv) for lv in levels]
            print(table(levels, label), flush=True)
    finally:
        stop(solo, 5)
        if not a.existing:
            launch.down("bench")
    lines = ["", "| conc | direct tok/s | router tok/s | routed/direct | direct lat p50 ms | router lat p50 ms | "
                 "overhead p50 ms | direct decode tok/s/stream | router decode tok/s/stream | N-replica tok/s | N/1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, c in enumerate(a.concurrency):
        d, r = results["replica0-direct"][i], results["router-1-replica"][i]
        n = results.get(f"router-{len(state['replicas'])}-replicas", [None] * len(a.concurrency))[i]
        lines.append(f"| {c} | {d['tokens_per_s']:,.1f} | {r['tokens_per_s']:,.1f} | {r['tokens_per_s'] / d['tokens_per_s']:.3f} | "
                     f"{d['latency_p50_ms']:.1f} | {r['latency_p50_ms']:.1f} | {r['latency_p50_ms'] - d['latency_p50_ms']:+.1f} | "
                     f"{d.get('decode_tok_s_p50', float('nan')):,.1f} | {r.get('decode_tok_s_p50', float('nan')):,.1f} | "
                     + (f"{n['tokens_per_s']:,.1f} | {n['tokens_per_s'] / r['tokens_per_s']:.2f} |" if n else "- | - |"))
    print("\n".join(lines))
    if a.out:
        Path(a.out).write_text(json.dumps({"config": asdict(cfg), "plan": [r["reasons"] for r in state["replicas"]],
                                           "results": results}, indent=2))


if __name__ == "__main__":
    main()
