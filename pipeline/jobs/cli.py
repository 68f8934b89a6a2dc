"""The job store's commands (`sqlgenie jobs ...`, also `python -m pipeline.jobs ...`).

    sqlgenie jobs list
    sqlgenie jobs submit KIND CONFIG.yaml [--gpus 0,1] [-- EXTRA ARGS]
    sqlgenie jobs cancel ID | rerun ID | tail ID | show ID
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.errors import run_command
from core.procs import log_tail
from pipeline import runs
from pipeline.jobs.store import KINDS, JobError, JobStore


def _gpus(text: str) -> list[int]:
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise JobError(f"--gpus {text!r}: expected GPU numbers like 0,1") from None


def act(args) -> None:
    store = JobStore()
    if args.jobs_cmd == "list":
        store.reconcile()
        for j in store.list():
            d = j.duration()
            print(f"{j.id:>4} {j.kind:<9} {j.status:<10} {j.name:<24} gpus={j.gpus or '-'} "
                  f"{'' if d is None else f'{d:.0f}s'} {time.strftime('%m-%d %H:%M', time.localtime(j.created))}"
                  + (f"  ({j.note})" if j.note else ""))
    elif args.jobs_cmd == "submit":
        path = Path(args.config)
        if not path.is_file():
            raise JobError(f"{path}: no such file (a YAML config, e.g. configs/smollm2-cpu.yaml)")
        print(store.submit(args.kind, path.read_text(), gpus=_gpus(args.gpus or ""), args=args.extra))
    elif args.jobs_cmd == "cancel":
        store.cancel(args.id)
        print(f"job {args.id} cancelled")
    elif args.jobs_cmd == "rerun":
        print(store.rerun(args.id))
    elif args.jobs_cmd == "tail":
        print(log_tail(store.get(args.id).log_path, 40))
    elif args.jobs_cmd == "show":
        j = store.get(args.id)
        run = runs.for_job(j.id)
        print(f"job {j.id}: {j.kind} {j.name} {j.status}" + (f", exit code {j.exit_code}" if j.exit_code is not None else ""))
        print(f"  folder {j.dir}" + (f"\n  run {run.id} ({run.dir})" if run else ""))
        if j.error:
            print(j.error)


def _job_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a number; `sqlgenie jobs list` shows them)")
    return int(text)


def add_commands(sub) -> None:
    j = sub.add_parser("jobs", help="the job store: list, submit, cancel, rerun, tail, show")
    jsub = j.add_subparsers(dest="jobs_cmd")
    jsub.add_parser("list")
    s = jsub.add_parser("submit")
    s.add_argument("kind", choices=KINDS)
    s.add_argument("config")
    s.add_argument("--gpus", default="")
    s.add_argument("extra", nargs="*", help="extra arguments for the stage (after --)")
    for name in ("cancel", "rerun", "tail", "show"):
        jsub.add_parser(name).add_argument("id", type=_job_id)
    j.set_defaults(fn=act, jobs_cmd="list")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="sqlgenie")
    sub = p.add_subparsers(dest="group", required=True)
    add_commands(sub)
    args = p.parse_args(["jobs", *argv])
    return run_command(act, args)
