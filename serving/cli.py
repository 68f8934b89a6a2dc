"""The serving commands (`sqlgenie serve ...`, `sqlgenie ask`; also `python -m serving ...`).

    sqlgenie serve up [--model DIR] [--replicas N] [--policy round_robin] [--name N] [key=value ...]
    sqlgenie serve run --config serve.yaml      # up, supervise in the foreground, down on SIGTERM (serve jobs)
    sqlgenie serve replica --model DIR --host 0.0.0.0 --port 8100   # one replica for a router on another host
    sqlgenie serve status | down | stats [--name sqlgenie]
    sqlgenie ask --schema schema.sql "How many users signed up in 2024?" [--deployment sqlgenie --model ft]
                 [--rows rows.sql --execute] [--target postgres] [--show-prompt]
    sqlgenie ask --database postgresql://ann@db:5432/shop "How many orders?"   # or a SQLite file (read-only)

Errors a user can cause print as one line (exit code 2).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import assets
from core.errors import run_command
from serving import deployments as D
from serving import launch, stats
from serving.config import load_serve_config
from serving.text_to_sql import AskError, TextToSql, known_dialect
from sql import databases
from sql.validate import DIALECTS


def serve_config(args):
    """ServeConfig from --config YAML <- key=value overrides <- the named flags."""
    over = list(args.overrides or [])
    for key in ("model", "replicas", "policy", "name"):
        if getattr(args, key, None) is not None:
            over.append(f"{key}={getattr(args, key)}")
    return load_serve_config(getattr(args, "config", None), over)


def cmd_up(args):
    st = launch.up(serve_config(args))
    print(f"ready: {st['router']['url']}/v1  (models {', '.join(st['models'])})")


def cmd_run(args):
    launch.run(serve_config(args), progress=lambda s: print(s, flush=True))


def cmd_replica(args):
    launch.remote_replica(serve_config(args), args.host, args.port, progress=lambda s: print(s, flush=True))


def cmd_down(args):
    D.reap(args.name, print)
    print(f"stopped {launch.down(args.name)} process group(s)")


def cmd_status(args):
    D.reap(None, print)
    st = D.status(args.name)
    r = st["router"]
    print(f"deployment {st['name']} ({st.get('phase')}): router {r['url']}/v1 {r['health']}")
    for name, m in st.get("models", {}).items():
        print(f"  model {name}: {m['kind']} {m['path']}")
    for rep in st["replicas"]:
        pid = (rep.get("proc") or {}).get("pid")
        print(f"  replica {rep['index']} {rep['device']} :{rep['port']} pid {pid}: {rep['health']}"
              + (f", {rep['restarts']} restart(s)" if rep.get("restarts") else ""))
    for w in st.get("workers", []):
        print(f"  remote worker {w}: {'healthy' if D.healthy(w, 1.5) else 'not answering'}")
    for ev in st.get("events", [])[-5:]:
        print(f"  {time.strftime('%H:%M:%S', time.localtime(ev['t']))} {ev['what']}")


def cmd_stats(args):
    print(json.dumps(stats.snapshot(D.load(args.name)), indent=2))


def _read(path: str | None, what: str) -> str:
    if not path:
        return ""
    p = Path(path)
    if not p.is_file():
        raise AskError(f"--{what} {path}: no such file")
    return p.read_text(encoding="utf-8", errors="replace")


NO_SQL = 3      # `ask`'s exit code when the answer is not SQL (prose, an empty answer)


def cmd_ask(args):
    schema = _read(args.schema, "schema")
    rows = _read(args.rows, "rows")
    if args.target and not known_dialect(args.target):
        raise AskError(f"--target {args.target!r} is not a dialect sqlglot knows: choose one of {', '.join(DIALECTS)}")
    db = None
    if args.database:
        if args.schema or args.rows:
            raise AskError("--database reads the schema and sample rows from the database: leave out --schema and "
                           "--rows (or leave out --database)")
        db = databases.connect(args.database)          # the password: PGPASSWORD or ~/.pgpass (libpq's own)
        read = db.schema()
        schema, rows = read.ddl, read.rows
        args.target = args.target or (db.dialect if db.dialect != "sqlite" else None)
        args.execute = True
    if args.endpoint:

        t2s = TextToSql(args.endpoint, assets.resolve(args.tokenizer), model=args.model)
    else:
        t2s = TextToSql.for_deployment(args.deployment, args.model)
    ans = t2s.ask(schema, args.question, target=args.target, sample_rows=rows, execute=args.execute,
                  constrained=args.constrained, candidates=args.vote, repair=not args.no_repair, database=db)
    if args.json:
        print(json.dumps({"sql": ans.check.transpiled or ans.sql, "valid": ans.check.ok, "parses": ans.check.parses, "errors": ans.check.errors,
                          "columns": ans.columns, "rows": ans.rows, "latency_s": ans.latency_s, "model": ans.model,
                          "constrained": ans.constrained, "candidates": ans.candidates, "agreement": ans.agreement,
                          "resampled": ans.resampled, "schema_left_out": ans.schema_left_out, "repairs": ans.repairs,
                          "notes": ans.notes, "database": ans.database, "execution_error": ans.execution_error},
                         default=str))
        return 0 if ans.check.parses else NO_SQL
    if args.show_prompt:
        print(f"-- prompt ({len(ans.prompt_ids)} tokens):\n{ans.prompt_text}\n-- raw completion:\n{ans.raw}\n--")
    print(ans.check.transpiled or ans.check.formatted or ans.raw)
    for e in ans.check.errors:
        print(f"-- warning: {e}", file=sys.stderr)
    if ans.columns:
        print("-- " + " | ".join(ans.columns))
        for row in ans.rows[:20]:
            print("-- " + " | ".join(map(str, row)))
    if ans.execution_error:
        print(f"-- execution: {ans.execution_error}", file=sys.stderr)
    elif ans.database:
        print(f"-- rows from {ans.database} (read-only)", file=sys.stderr)
    for n in ans.notes:
        print(f"-- note: {n}", file=sys.stderr)
    how = (("constrained" if ans.constrained else "unconstrained")
           + (f", {ans.candidates} candidates, {ans.agreement or 0} agreed" if ans.candidates > 1 else "")
           + (" (none of the first round ran: a second, hotter round was drawn)" if ans.resampled else "")
           + (f", left out of the prompt (schema too wide): {', '.join(ans.schema_left_out)}" if ans.schema_left_out
              else "")
           + (f", repaired: {', '.join(ans.repairs)}" if ans.repairs else ""))
    print(f"-- {ans.model}: {ans.latency_s * 1000:.0f} ms, {ans.prompt_tokens} prompt + {ans.completion_tokens} "
          f"completion tokens; {how}", file=sys.stderr)
    if not ans.check.parses:
        print("error: the model wrote no SQL that parses (shown above as it came); try --constrained, which keeps "
              "the answer inside SQL over your schema's names", file=sys.stderr)
        return NO_SQL
    return 0


def add_serve(sub) -> None:
    sv = sub.add_parser("serve", help="vLLM replicas behind vllm-router: up, run, replica, status, down, stats")
    ssub = sv.add_subparsers(dest="serve_cmd", required=True)
    for name, fn, help_ in (("up", cmd_up, "start N replicas + the router, return once ready"),
                            ("run", cmd_run, "up + supervise in the foreground (restarts dead replicas) until stopped"),
                            ("replica", cmd_replica, "one replica for a router on another host (give it the "
                                                     "deployment's --name: that is the model name clients send)")):
        s = ssub.add_parser(name, help=help_)
        s.add_argument("--config", help="YAML with ServeConfig fields")
        s.add_argument("--model")
        s.add_argument("--replicas", type=int)
        s.add_argument("--policy")
        s.add_argument("--name")
        if name == "replica":
            s.add_argument("--host", default="127.0.0.1", help="address to bind (the router's host must reach it)")
            s.add_argument("--port", type=int, default=8100)
        s.add_argument("overrides", nargs="*", help="ServeConfig fields, e.g. max_model_len=2048 base_port=8200")
        s.set_defaults(fn=fn)
    for name, fn in (("down", cmd_down), ("status", cmd_status), ("stats", cmd_stats)):
        s = ssub.add_parser(name)
        s.add_argument("--name", default="sqlgenie")
        s.set_defaults(fn=fn)


def add_ask(sub) -> None:
    a = sub.add_parser("ask", help="schema + question -> validated SQL through a deployment")
    a.add_argument("question")
    a.add_argument("--schema", help="file with CREATE TABLE statements")
    a.add_argument("--rows", help="file with INSERT statements (sample rows, for --execute)")
    a.add_argument("--deployment", default="sqlgenie", help="the deployment to ask (its router, tokenizer, contract)")
    a.add_argument("--model", help="a model the deployment serves (a LoRA adapter's name); default: its base")
    a.add_argument("--endpoint", help="any OpenAI endpoint instead of a deployment (then --tokenizer says how to "
                                      "prompt it, with the platform's default contract)")
    a.add_argument("--tokenizer", default="embedded:smollm2-135m-instruct")
    a.add_argument("--target", help="transpile to this dialect (postgres, mysql, duckdb, bigquery, snowflake, ...)")
    a.add_argument("--execute", action="store_true", help="run it on an in-memory SQLite of the schema + rows")
    a.add_argument("--database", metavar="URL_OR_SQLITE_PATH", help="your database: a SQLite file or "
                   "postgresql://user@host:5432/dbname (password from PGPASSWORD or ~/.pgpass); its schema and a few "
                   "rows a table make the prompt, and the answer runs on it, read-only and capped")
    a.add_argument("--show-prompt", action="store_true", help="print the exact prompt and the raw completion")
    a.add_argument("--constrained", action="store_true", help="generate under a grammar of the schema's own names")
    a.add_argument("--vote", type=int, default=0, metavar="N", help="also sample N answers, run them on the sample "
                   "rows, return the one most agree on (execution-guided)")
    a.add_argument("--no-repair", action="store_true", help="keep the answer as the model wrote it (by default a column "
                   "the schema places elsewhere is moved there, or its table joined by the one foreign-key path)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(fn=cmd_ask)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_serve(sub)
    add_ask(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("up", "run", "replica", "down", "status", "stats"):
        argv = ["serve", *argv]   # `python -m serving up` keeps working
    args = p.parse_args(argv)
    return run_command(args.fn, args)

