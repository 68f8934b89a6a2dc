"""sqlgenie serving CLI: vLLM replicas behind vllm-router, and the text-to-SQL client.

    python -m serving up [--model DIR] [--replicas N] [--policy round_robin] [key=value ...]
    python -m serving run --config serve.yaml   # up, stay in the foreground, down on SIGTERM (serve jobs)
    python -m serving status | down [--name sqlgenie]
    python -m serving ask --schema schema.sql "How many users signed up in 2024?" [--target postgres] [--execute]
    python -m serving stats                # per-replica and router counters from /metrics

Errors a user can cause print as one line (exit code 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import run_command


def serve_config(args):
    """ServeConfig from --config YAML <- key=value overrides <- the named flags."""
    from pathlib import Path

    from pipeline.config import _merge, build, parse_overrides, parse_yaml
    from serving.launch import ServeConfig

    source = getattr(args, "config", None) or "serve"
    tree = parse_yaml(Path(args.config).read_text(), source) if getattr(args, "config", None) else {}
    tree = _merge(tree, parse_overrides(args.overrides or []))
    for key in ("model", "replicas", "policy", "name"):
        if getattr(args, key, None) is not None:
            tree[key] = getattr(args, key)
    return build(ServeConfig, tree, source)


def cmd_up(args):
    from serving import launch

    state = launch.up(serve_config(args))
    print(f"ready: {state['router']['url']}/v1  (model name {state['name']})")


def cmd_run(args):
    """up, then stay in the foreground until SIGTERM/SIGINT (a serve job), then down."""
    import signal
    import time

    from serving import launch

    cfg = serve_config(args)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    state = launch.up(cfg)
    print(f"ready: {state['router']['url']}/v1  (model name {state['name']})", flush=True)
    try:
        while not stop:
            time.sleep(1)
            st = launch.status(cfg.name)
            if not st["router"]["alive"]:
                raise launch.ServeError("vllm-router exited: see " + st["router"]["log"])
    finally:
        launch.down(cfg.name)
        print("stopped", flush=True)


def cmd_down(args):
    from serving import launch

    print(f"stopped {launch.down(args.name)} process group(s)")


def cmd_status(args):
    from serving import launch

    st = launch.status(args.name)
    r = st["router"]
    print(f"router {r['url']}: {'healthy' if r['healthy'] else 'DOWN'}")
    for rep in st["replicas"]:
        print(f"  replica {rep['index']} {rep['device']} :{rep['port']} pid {rep['pid']}: "
              f"{'healthy' if rep['healthy'] else 'alive, not healthy' if rep['alive'] else 'DEAD'}")


def cmd_ask(args):
    from pipeline import assets
    from serving.text_to_sql import TextToSql

    schema = Path(args.schema).read_text() if args.schema else ""
    rows = Path(args.rows).read_text() if args.rows else ""
    t2s = TextToSql(args.endpoint, assets.resolve(args.tokenizer), max_model_len=args.max_model_len)
    ans = t2s.ask(schema, args.question, args.dialect, args.target, rows, args.execute, mode=args.mode)
    if args.json:
        print(json.dumps({"sql": ans.check.transpiled or ans.sql, "valid": ans.check.ok, "errors": ans.check.errors,
                          "columns": ans.columns, "rows": ans.rows, "latency_s": ans.latency_s}, default=str))
        return
    print(ans.check.transpiled or ans.check.formatted or ans.raw)
    for e in ans.check.errors:
        print(f"-- warning: {e}", file=sys.stderr)
    if ans.columns:
        print("-- " + " | ".join(ans.columns))
        for row in ans.rows[:20]:
            print("-- " + " | ".join(map(str, row)))
    if ans.execution_error:
        print(f"-- execution: {ans.execution_error}", file=sys.stderr)
    print(f"-- {ans.latency_s * 1000:.0f} ms, {ans.prompt_tokens} prompt + {ans.completion_tokens} completion tokens",
          file=sys.stderr)


def cmd_stats(args):
    from serving import launch, stats

    print(json.dumps(stats.snapshot(launch.load_state(args.name)), indent=2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start N vLLM replicas + vllm-router")
    u.add_argument("--model")
    u.add_argument("--replicas", type=int)
    u.add_argument("--policy")
    u.add_argument("--name")
    u.add_argument("overrides", nargs="*", help="ServeConfig fields, e.g. max_model_len=2048 base_port=8200")
    u.set_defaults(fn=cmd_up)
    r = sub.add_parser("run", help="up + stay in the foreground until stopped (what a serve job runs)")
    r.add_argument("--config", help="YAML with ServeConfig fields")
    r.add_argument("--model")
    r.add_argument("--replicas", type=int)
    r.add_argument("--policy")
    r.add_argument("--name")
    r.add_argument("overrides", nargs="*")
    r.set_defaults(fn=cmd_run)
    for name, fn in (("down", cmd_down), ("status", cmd_status), ("stats", cmd_stats)):
        s = sub.add_parser(name)
        s.add_argument("--name", default="sqlgenie")
        s.set_defaults(fn=fn)
    a = sub.add_parser("ask", help="schema + question -> validated SQL through the router")
    a.add_argument("question")
    a.add_argument("--schema", help="file with CREATE TABLE statements")
    a.add_argument("--rows", help="file with INSERT statements (sample rows, for --execute)")
    a.add_argument("--endpoint", default="http://127.0.0.1:8000")
    a.add_argument("--tokenizer", default="embedded:smollm2-135m-instruct", help="the served model's tokenizer")
    a.add_argument("--dialect", default="sqlite", help="dialect the model writes (what it was trained on)")
    a.add_argument("--target", help="transpile to this dialect (postgres, mysql, duckdb, bigquery, snowflake, ...)")
    a.add_argument("--execute", action="store_true", help="run it on an in-memory SQLite of the schema + rows")
    a.add_argument("--mode", choices=["completions", "chat"], default="completions")
    a.add_argument("--max-model-len", type=int)
    a.add_argument("--json", action="store_true")
    a.set_defaults(fn=cmd_ask)
    args = p.parse_args(argv)
    return run_command(args.fn, args)


if __name__ == "__main__":
    sys.exit(main())
