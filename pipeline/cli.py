"""The pipeline's commands: one subcommand per stage, each calling that stage's `run` (also `python -m pipeline`).

    sqlgenie assets                                            # build the embedded model + tokenizer
    sqlgenie generate-data [--train N --test N --out DIR]
    sqlgenie prepare -c configs/smollm2-cpu.yaml [key=value ...]
    sqlgenie train -c configs/smollm2-cpu.yaml [train.resume=latest]
    sqlgenie evaluate -c configs/smollm2-cpu.yaml [--adapter latest|RUN_ID|DIR] [--split ood|ood2] [--limit 500]
    sqlgenie export -c configs/smollm2-cpu.yaml [export.adapter=RUN_ID] 'export.formats=[merged,gguf-q8_0]'
    sqlgenie runs [NAME]                                       # every run: id, job, status, steps, loss
    sqlgenie config -c configs/llama31-8b-qlora.yaml [--explain]

Errors a user can cause print as one line (exit code 2); anything else is a bug and keeps its traceback.
A full disk is one of the former: "no space left on device while writing <path>: free space and ...".
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from core import assets, envs
from core.errors import DataError, run_command
from core.files import NoSpaceError, failed_path, no_space
from core.settings import REPO_ROOT
from pipeline import config, runs
from pipeline.data import feedback, prepare
from pipeline.datagen import generate
from pipeline.evaluate import report
from pipeline.evaluate import stage as evaluate
from pipeline.export import stage as export
from pipeline.train import stage as train


def _config(args, need_model: bool = False):
    return config.load(args.config, args.overrides, need_model=need_model)


def cmd_assets(args) -> None:
    for name, path in assets.build_all().items():
        print(f"{name}: {path}")


def cmd_generate(args) -> None:
    print(json.dumps(generate.run(Path(args.out), args.train, args.test, args.seed, not args.no_card), indent=2))


@contextlib.contextmanager
def disk_full_in_one_line(then: str, writing: Path | None = None):
    """A full disk while a stage writes, as one line naming the file (or `writing`) and what to do `then`."""
    try:
        yield
    except NoSpaceError:
        raise
    except Exception as e:
        if not no_space(e, writing):
            raise
        where = failed_path(e) or writing or "its output"
        raise NoSpaceError(f"no space left on device while writing {where}: free space and {then}") from None


def cmd_prepare(args) -> None:
    cfg = _config(args)
    out = runs.prepared_dir(cfg, prepare.fingerprint(cfg))
    with disk_full_in_one_line("run `sqlgenie prepare` again (nothing was published: prepared data already there "
                               "is unchanged)", out):
        print(prepare.run(cfg).summary())


def cmd_train(args) -> None:
    with disk_full_in_one_line("run the command again"):   # the stage itself names the run to resume
        print(train.run(_config(args, need_model=True)).summary())


def cmd_evaluate(args) -> None:
    with disk_full_in_one_line("run the command again (nothing of the run it evaluates is changed)"):
        _evaluate(args)


def _evaluate(args) -> None:
    res = evaluate.run(_config(args, need_model=True), adapter=args.adapter, split=args.split, limit=args.limit, label=args.label,
                       backend=args.backend, merge=args.merge, endpoint=args.endpoint, suite=args.test_suite,
                       constrained=args.constrained, vote=args.vote, repair=args.repair,
                       resample=not args.no_resample)
    print(res.summary())


def cmd_export(args) -> None:
    with disk_full_in_one_line("run the command again (exports already published are unchanged)"):
        print(export.run(_config(args, need_model=True)).summary())


def cmd_compare(args) -> None:
    print(f"wrote {report.compare(Path(args.a), Path(args.b))}")


def cmd_feedback(args) -> None:
    if args.action == "export":
        if not args.out:
            raise DataError("sqlgenie feedback export needs a file to write: sqlgenie feedback export FILE.jsonl")
        n, left = feedback.export(Path(args.out))
        print(f"{n} training row(s) in the Gretel format -> {args.out}"
              + "".join(f"\n  left out: {k} ({v})" for k, v in left.items())
              + f"\n  train on them: data.sources=[{{path: '{args.out}'}}]")
        return
    marks = feedback.marks()
    if not marks:
        print("no marks yet: mark answers right or wrong in the playground")
    for m in marks:
        print(f"{time.strftime('%m-%d %H:%M', time.localtime(m.time))}  {m.verdict:<5}  {m.model:<28} {m.question[:60]}"
              + ("  (expected SQL given)" if m.expected_sql else ""))


def cmd_runs(args) -> None:
    rows = runs.list_runs(args.name, damaged=True)
    if not rows:
        print("no runs yet: sqlgenie train -c configs/smollm2-cpu.yaml")
    for r in rows:
        s = runs.summarize(r)
        loss = f"loss {s['last_loss']:.4f}" if s["last_loss"] is not None else ""
        print(f"{r.id:<40} {r.status:<12} {('job #' + str(r.job_id)) if r.job_id else '':<8} steps {s['steps']:<6} "
              f"{loss:<14} {time.strftime('%m-%d %H:%M', time.localtime(r.created))}  {r.dir}")
        why = r.status_line().partition(": ")[2]     # damaged: which file; failed: why (unreadable metrics
        if why:                                        # lines are warned about on stderr as they are read)
            print(f"    {why}")


def cmd_config(args) -> None:
    if args.explain:
        for name, default, help_ in config.explain():
            print(f"{name} = {default}\n    {help_}")
        print("\n# environment variables (core/envs.py)")
        for name, default, help_ in envs.explain():
            print(f"{name} = {default}\n    {help_}")
        return
    print(config.dump(_config(args)), end="")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sqlgenie", description="sqlgenie pipeline stages")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_commands(sub)
    return p


def add_commands(sub) -> None:
    sub.add_parser("assets", help="build the embedded SmolLM2 model and Llama-3.1 tokenizer").set_defaults(fn=cmd_assets)

    g = sub.add_parser("generate-data", help="(re)generate the bundled execution-verified dataset")
    g.add_argument("--train", type=int, default=generate.DEFAULT_TRAIN)
    g.add_argument("--test", type=int, default=generate.DEFAULT_TEST)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--out", default=str(REPO_ROOT / "data" / "sqlgenie-sql"))
    g.add_argument("--no-card", action="store_true", help="do not write README.md beside the files")
    g.set_defaults(fn=cmd_generate)

    for name, fn, help_ in (("prepare", cmd_prepare, "load, mix, format and tokenize the training data"),
                            ("train", cmd_train, "fine-tune with LoRA / QLoRA (prepares the data if needed)"),
                            ("export", cmd_export, "merge the adapter, write GGUF, quantize (FP8/NVFP4/W4A16), push"),
                            ("config", cmd_config, "print the resolved config (or --explain every field)")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--config", "-c", help="YAML recipe (configs/*.yaml)")
        s.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.max_seq_len=512")
        if name == "config":
            s.add_argument("--explain", action="store_true")
        s.set_defaults(fn=fn)

    e = sub.add_parser("evaluate", help="execution accuracy of the base model or a run's adapter on held-out rows")
    e.add_argument("--config", "-c")
    e.add_argument("overrides", nargs="*")
    e.add_argument("--adapter", help="`latest` (this config's newest trained run), a run id (its adapter, or a full "
                                      "fine-tune's model), or an adapter folder")
    e.add_argument("--split", default="bundled:test", help="bundled:test | ood (the hand-written yardstick) | ood2 "
                                                          "(the second one, for final figures only) | a file or "
                                                          "Spider folder")
    e.add_argument("--limit", type=int, default=500)
    e.add_argument("--label", help="name of the result folder (default: base / adapter)")
    e.add_argument("--endpoint", help="with --backend openai: base URL of a vLLM replica or the router")
    e.add_argument("--test-suite", type=int, default=0, metavar="K",
                   help="also compare on K generated databases (test-suite accuracy; the OOD splits use 3 by default)")
    e.add_argument("--backend", choices=["auto", "transformers", "vllm", "openai"], default="auto",
                   help="vllm: offline batch generation in the serving environment (.venv-serve)")
    e.add_argument("--merge", action="store_true", help="with --backend vllm: merge the adapter first (bf16)")
    e.add_argument("--constrained", action="store_true", help="generate under a grammar built from each row's schema")
    e.add_argument("--vote", type=int, default=0, metavar="N",
                   help="execution-guided: sample N candidates + the greedy one, keep those that run, vote by result")
    e.add_argument("--no-resample", action="store_true",
                   help="with --vote: no second, hotter round of N for the rows where no candidate ran")
    e.add_argument("--repair", action="store_true",
                   help="read each column where the schema has it when there is one reading: moved to the table "
                   "of its FROM that has it, or its table joined by the one foreign-key path (as `ask` does)")
    e.set_defaults(fn=cmd_evaluate)

    c = sub.add_parser("compare", help="compare two evaluation runs (table, PNG chart, failure classes)")
    c.add_argument("a", help="baseline eval folder (metrics.json + rows.jsonl)")
    c.add_argument("b", help="the other eval folder; the report is written there")
    c.set_defaults(fn=cmd_compare)

    f = sub.add_parser("feedback", help="answers marked right / wrong in the playground: list them, or export the "
                                        "ones that can train as Gretel JSONL (a data source for the next fine-tune)")
    f.add_argument("action", choices=["list", "export"])
    f.add_argument("out", nargs="?", help="export: the .jsonl file to write")
    f.set_defaults(fn=cmd_feedback)

    r = sub.add_parser("runs", help="list training runs (id, job, status, steps, loss, folder)")
    r.add_argument("name", nargs="?", help="only this config name")
    r.set_defaults(fn=cmd_runs)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(args.fn, args)
