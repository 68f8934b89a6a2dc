"""Benchmark: prepare a 100k-row Gretel-format file to tokenized Parquet with the Llama-3.1 tokenizer.

Target (issue: step 1): <= 60 s on a 2-core machine. Baseline in the same run: the straightforward
pipeline (Jinja `apply_chat_template` per row, `tokenizer(...)` in `datasets.map(num_proc=2)`, every
SQL parsed) on a 20k-row slice, reported as rows/s.

    sqlgenie bench prepare_100k [--rows 100000] [--baseline-rows 20000]
Prints a table; the figures go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def naive_rows_per_s(path: Path, n: int) -> float:
    import sqlglot

    from pipeline import config
    from pipeline.data.loaders import load
    from pipeline.model import load_tokenizer
    from sql.prompt import sql_messages

    cfg = config.load(Path(__file__).resolve().parents[1] / "configs" / "llama31-8b-qlora.yaml")
    t0 = time.time()
    tok = load_tokenizer(cfg)
    ds = load(config.SourceConfig(path=str(path), max_rows=n))

    def fn(batch):
        prompts, comps, ok = [], [], []
        for i in range(len(batch["id"])):
            row = {k: batch[k][i] for k in batch}
            try:
                ok.append(bool(sqlglot.parse(row["sql"])))
            except Exception:  # noqa: BLE001
                ok.append(False)
            msgs = sql_messages(row, cfg.data.system_prompt, True)
            p = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": row["sql"]}], tokenize=False)
            prompts.append(p)
            comps.append(full[len(p):])
        enc = tok([p + c for p, c in zip(prompts, comps)], add_special_tokens=False)
        return {"input_ids": enc["input_ids"], "ok": ok}

    out = ds.map(fn, batched=True, batch_size=1000, num_proc=2)
    with tempfile.TemporaryDirectory() as d:
        out.to_parquet(os.path.join(d, "x.parquet"))
    return n / (time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=20_000)
    ap.add_argument("--data", default="/tmp/sqlgenie-bench/gretel-100k")
    args = ap.parse_args()

    from pipeline import config
    from pipeline.data import prepare
    from pipeline.datagen import generate

    data = Path(args.data)
    src = data / "train.parquet"
    if not src.is_file():
        print(f"generating {args.rows} verified Gretel-format rows into {data} (not timed)")
        generate.run(data, args.rows, 0, seed=11, write_card=False)
    with tempfile.TemporaryDirectory() as out:
        cfg = config.load(Path(__file__).resolve().parents[1] / "configs" / "llama31-8b-qlora.yaml",
                          [f"data.sources=[{{path: '{src}', max_rows: {args.rows}}}]", f"data.output_dir={out}/prep"])
        t0 = time.time()
        res = prepare.run(cfg)
        wall = time.time() - t0
        print(res.summary())
    ours = args.rows / wall
    base = naive_rows_per_s(src, args.baseline_rows)
    print("\n| area | metric | ours | baseline | ratio | machine | command |")
    print("|---|---|---|---|---|---|---|")
    print(f"| data | prepare {args.rows // 1000}k Gretel rows -> tokenized Parquet (Llama-3.1 tokenizer), wall s "
          f"| {wall:.1f} s | 60 s (target) | {wall / 60:.2f} | 2-core CPU | `sqlgenie bench prepare_100k` |")
    print(f"| data | prepare throughput, rows/s | {ours:.0f} | {base:.0f} (naive Jinja + map(num_proc=2)) "
          f"| {ours / base:.2f}x | 2-core CPU | `sqlgenie bench prepare_100k` |")


if __name__ == "__main__":
    main()
