"""sqlgenie: the one command line (installed as the `sqlgenie` console script by the setup).

    sqlgenie console                      # dashboard + playground + a supervised deployment; Ctrl-C stops all
    sqlgenie console --only serve         # one part in the foreground (the Procfile: `honcho start`)
    sqlgenie prepare|train|evaluate|export|config|runs|assets|generate-data|compare ...   (pipeline stages)
    sqlgenie serve up|run|replica|status|down|stats ...                                  (serving)
    sqlgenie ask --schema s.sql "question"                                                (text-to-SQL)
    sqlgenie jobs list|submit|cancel|rerun|tail|show ...                                  (the job store)
    sqlgenie bench [NAME ARGS...]                                      (the benchmark lab: bench/, a list without NAME)

`sqlgenie <command> --help` for each. Errors a user can cause print as one line (exit code 2).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys

from app import console
from core.errors import SqlgenieError, run_command
from core.settings import REPO_ROOT
from pipeline import cli as pipeline_cli
from pipeline.jobs import cli as jobs_cli
from serving import cli as serving_cli


def cmd_console(args) -> None:
    if args.only:
        console.run_one(args.only, args.model, args.replicas)
    else:
        console.run(args.model, args.replicas, serve=not args.no_serve)


def benches() -> dict[str, str]:
    """bench/NAME.py -> the first line of its docstring (read, not imported: a bench may need torch or vLLM)."""
    out = {}
    for path in sorted((REPO_ROOT / "bench").glob("*.py")):
        if path.stem != "__init__":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            out[path.stem] = doc.split("\n", 1)[0]
    return out


def cmd_bench(args) -> None:
    """Run bench/NAME.py as `python -m bench.NAME ARGS` from the repository root (this process becomes it)."""
    found = benches()
    if not args.name:
        width = max(map(len, found), default=0)
        print("\n".join(f"{n:<{width}}  {d}" for n, d in found.items()))
        print("\nsqlgenie bench NAME --help for each; bash bench/device.sh for the GPU machine")
        return
    if args.name not in found:
        raise SqlgenieError(f"no bench named {args.name!r}: choose one of {', '.join(found)} (sqlgenie bench lists them)")
    os.chdir(REPO_ROOT)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", f"bench.{args.name}", *args.args])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sqlgenie", description="A text-to-SQL model of your own: train, evaluate, "
                                "export and serve it, from a browser or from here.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("console", help="start the dashboard, the playground and a deployment of the default model")
    c.add_argument("--model", default="embedded:smollm2-135m-instruct")
    c.add_argument("--replicas", type=int, help="default: one per GPU, or 2 on a CPU machine with 2+ cores")
    c.add_argument("--no-serve", action="store_true", help="dashboard and playground only")
    c.add_argument("--only", choices=["dashboard", "playground", "serve"],
                   help="run this one part in the foreground (what the Procfile starts; `honcho start` runs all three)")
    c.set_defaults(fn=cmd_console)
    pipeline_cli.add_commands(sub)
    serving_cli.add_serve(sub)
    serving_cli.add_ask(sub)
    jobs_cli.add_commands(sub)
    b = sub.add_parser("bench", help="the benchmark lab (bench/): list the benches, or run one with its arguments",
                       add_help=False)
    b.add_argument("name", nargs="?", help="a bench (none: list them)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="the bench's own arguments (NAME --help for them)")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(args.fn, args)


if __name__ == "__main__":
    sys.exit(main())
