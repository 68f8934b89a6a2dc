"""Data stage: load every source, drop bad rows (with a reason), format with the chat template, tokenize,
length-filter, mix by weight, split a holdout, save as Parquet with a report and a length histogram.

Every input record is accounted for: it is usable, or dropped under one reason, counted per source in the
report (rows_in = usable + dropped, always): broken_line (a line or CSV record that is not a record),
field_too_large, missing_field, non_utf8, wrong_type (a field of a type it cannot have, e.g. an `id` that
is a list), duplicate_id, unparseable_sql (sqlglot cannot parse the gold SQL), not_a_query (the gold "SQL"
is no statement, e.g. a lone `DROP`), gold_does_not_run (the gold SQL fails on its own sql_context in the
SQLite sandbox, or on its Spider database), too_long (prompt + completion > max_seq_len). The report names
where the first dropped rows of each reason are ("line 4: id is a list, not text or a number").

The gold SQL check (data.check_sql) parses every gold with sqlglot, then runs it in sql/sandbox.py: the
row's CREATE + INSERT statements in a throwaway in-memory SQLite, the gold read-only with a time cap (a
gold that writes, DML / DDL, runs on a fresh copy with writes allowed). It runs only for SQLite gold
(data.sql_dialect '' or sqlite), in worker processes on big inputs.

The output folder is named by the data fingerprint (pipeline/runs.py: prepared_dir), built in a staging
folder and published atomically; one process prepares a given fingerprint at a time.

Every dropped row is listed in dropped.jsonl (source, id, reason, where it is and what is wrong, its question),
and the stage says where it is as it goes, one line a phase: `prepare: 3/8 [running the gold SQL on its own
schema]` (the Jobs and Data pages draw their progress bar from it).

    sqlgenie prepare -c configs/smollm2-cpu.yaml
    -> <home>/data/<name>-<fingerprint>/{train,eval}.parquet, report.json, report.md, lengths.png, dropped.jsonl
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DataError
from core.files import FileLock, publish, staging_dir
from core.settings import to_dict
from pipeline import runs
from pipeline.config import RunConfig, SourceConfig
from pipeline.data.loaders import load
from pipeline.model import load_tokenizer
from sql.prompt import ChatFormatter
from sql.sandbox import Sandbox, SandboxError  # imported before any fork: a worker imports nothing
from sql.statements import split_statements

REASONS = ["broken_line", "field_too_large", "missing_field", "non_utf8", "wrong_type", "duplicate_id",
           "unparseable_sql", "not_a_query", "gold_does_not_run", "too_long"]
MEANING = {"broken_line": "a line or CSV record that is not a record", "field_too_large": "a field over 512 KB",
           "missing_field": "its question, schema or SQL is empty", "non_utf8": "bytes that are not UTF-8",
           "wrong_type": "a field of a type it cannot have (a list where text belongs)",
           "duplicate_id": "an id seen before in the same source",
           "unparseable_sql": "gold SQL that sqlglot cannot parse", "not_a_query": "gold \"SQL\" that is no statement",
           "gold_does_not_run": "gold SQL that fails on its own schema and rows (or its Spider database)",
           "too_long": "prompt + answer longer than data.max_seq_len tokens"}
ROW_CHECKS = "2: gold SQL run on its sql_context; wrong_type"   # what decides which rows are kept, beyond the config
EXAMPLES = 5                  # dropped rows named in the report per source and reason
GOLD_TIMEOUT_S = 2.0          # per gold statement (loading the row's context has the sandbox's own cap)
GOLD_ROWS_PER_WORKER = 2000   # fewer rows than this run in this process: starting workers would cost more
CARRY = ["id", "source", "kind", "domain", "sql_complexity", "sql_task_type", "question", "sql"]
KEEP_COLUMNS = CARRY + ["input_ids", "prompt_length", "length"]
PHASES = {"tokenizer": "loading the tokenizer", "load": "reading the sources", "check_sql": "parsing the gold SQL",
          "check_gold": "running the gold SQL on its own schema", "format_tokenize": "formatting and tokenizing",
          "filter_mix_split": "counting, mixing and splitting", "write": "writing the prepared data",
          "report": "writing the report"}
DROPPED = "dropped.jsonl"     # every dropped row of a prepared folder, one JSON object a line


@dataclass
class PrepareResult:
    out_dir: Path
    train_rows: int
    eval_rows: int
    seconds: float
    report: dict = field(default_factory=dict)

    def summary(self) -> str:
        r = self.report
        drops = ", ".join(f"{k} {v}" + (f" ({'; '.join(ex)})" if (ex := _first_examples(r, k, 2)) else "")
                          for k, v in r["dropped"].items() if v) or "none"
        return (f"prepared {self.train_rows} train + {self.eval_rows} eval rows in {self.seconds:.1f} s "
                f"({r['rows_per_s']:.0f} rows/s) -> {self.out_dir}\n"
                f"  dropped: {drops}\n  tokens: mean {r['tokens']['mean']:.0f}, p95 {r['tokens']['p95']}, "
                f"max {r['tokens']['max']} (max_seq_len {r['max_seq_len']})\n  report: {self.out_dir / 'report.md'}")


def _column(ds, name: str) -> list:
    """A column as a Python list, straight from Arrow (datasets' lazy Column iterates row by row)."""
    return ds.with_format("arrow")[name].to_pylist()


def fingerprint(cfg: RunConfig) -> dict:
    """What decides the prepared data: if it changes, the data must be prepared again."""
    data = to_dict(cfg.data)
    data.pop("output_dir", None)
    return {"data": data, "tokenizer": cfg.model.tokenizer or cfg.model.name_or_path,
            "chat_template": cfg.model.chat_template, "row_checks": ROW_CHECKS}


def _first_examples(report: dict, reason: str, n: int) -> list[str]:
    """The first n dropped rows of a reason, named "<source> <where>" ("g.jsonl line 4: id is a list ...")."""
    out = []
    for name, s in report.get("sources", {}).items():
        out += [f"{name} {at}" for at in s.get("examples", {}).get(reason, [])]
    return out[:n]


# ------------------------------------------------------------------------------------ row checks
def _parse_ok(batch: dict, dialect: str) -> dict:
    """Per SQL string: '' (a real statement), unparseable_sql, or not_a_query (sqlglot only managed its
    fallback `Command` parse: a lone keyword, prose)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    out = []
    for sql in batch["sql"]:
        try:
            trees = [e for e in sqlglot.parse(sql, read=dialect or None) if e is not None]
        except (ParseError, TokenError, ValueError, RecursionError):
            out.append("unparseable_sql")
            continue
        if not trees:
            out.append("unparseable_sql")
        elif any(isinstance(t, exp.Command) for t in trees):
            out.append("not_a_query")
        else:
            out.append("")
    return {"ok": out}


def _check_sql(ds, dialect: str):
    """Mark rows whose gold SQL sqlglot cannot parse; each distinct SQL string is parsed once."""
    import datasets

    sqls, kinds, bads = _column(ds, "sql"), _column(ds, "kind"), _column(ds, "bad")
    unique = sorted({sql for sql, kind, bad in zip(sqls, kinds, bads) if kind == "sql" and not bad})
    if not unique:
        return ds
    # In-process: forking workers costs more than it saves for sqlglotc's ~0.1 ms parses, and it turns
    # off the tokenizer's own multithreading in this process afterwards (datasets sets
    # TOKENIZERS_PARALLELISM=false around num_proc maps): measured 2x slower end to end on 2 cores.
    parsed = datasets.Dataset.from_dict({"sql": unique}).map(
        _parse_ok, batched=True, batch_size=2000, fn_kwargs={"dialect": dialect}, desc="checking SQL")
    why = dict(zip(unique, _column(parsed, "ok")))
    bad = [b or (why.get(s, "") if k == "sql" else "") for s, k, b in zip(sqls, kinds, bads)]
    return ds.remove_columns("bad").add_column("bad", bad)


def _gold_runs(group: tuple[str, str, list[str]]) -> list[str]:
    """Run the gold SQLs of rows sharing one database: `group` = (sql_context, '', sqls) or ('', db_path, sqls).
    Per SQL '' when every statement of it runs, else why not in one line. Read-only on one loaded copy; a
    statement refused as a write runs again on a fresh copy with writes allowed (the copy is thrown away)."""
    context, db_path, sqls = group

    def fresh():
        if db_path:
            return Sandbox.from_database(db_path, timeout_s=GOLD_TIMEOUT_S)
        return Sandbox.from_context(context, timeout_s=GOLD_TIMEOUT_S)

    def run_all(box, statements: list[str], write: bool) -> None:
        for st in statements:
            box.query(st, read_only=not write)

    shared, out = None, []
    try:
        for sql in sqls:
            statements = split_statements(sql) or [sql]
            try:
                try:
                    if shared is None:
                        shared = fresh()
                    run_all(shared, statements, write=False)
                except SandboxError as e:
                    if e.kind != "denied":
                        raise
                    with fresh() as box:       # DML / DDL gold: on its own copy, writes allowed
                        run_all(box, statements, write=True)
                out.append("")
            except SandboxError as e:
                out.append(" ".join(f"{e.kind}: {e}".split()))
    finally:
        if shared is not None:
            shared.close()
    return out


def _check_gold(ds):
    """Mark sql rows whose gold SQL does not run on their own data (gold_does_not_run, with the error added to
    the row's origin); rows sharing a context or a database load it once, big inputs in worker processes.
    Returns the dataset and (rows checked, rows failed)."""
    cols = {c: _column(ds, c) for c in ("kind", "bad", "schema", "sample_data", "db_path", "sql", "origin")}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (kind, bad) in enumerate(zip(cols["kind"], cols["bad"])):
        if kind == "sql" and not bad:
            db = cols["db_path"][i]
            ctx = "" if db else f"{cols['schema'][i]}\n{cols['sample_data'][i]}".strip()
            groups[(ctx, db)].append(i)
    if not groups:
        return ds, (0, 0)
    jobs = [(ctx, db, [cols["sql"][i] for i in idx]) for (ctx, db), idx in groups.items()]
    rows = sum(len(idx) for idx in groups.values())
    workers = min(os.cpu_count() or 1, 8, rows // GOLD_ROWS_PER_WORKER)
    if workers > 1 and sys.platform == "linux":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        # fork: the workers need nothing but the sandbox and start in milliseconds; a worker that dies is an
        # error here (a multiprocessing.Pool would wait for its lost rows forever)
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_gold_runs, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
        except BrokenProcessPool:
            raise DataError("the gold SQL check stopped: one of its worker processes died (out of memory?); "
                            "prepare again, or set data.check_sql=false to skip the check") from None
    else:
        results = [_gold_runs(j) for j in jobs]
    bad, origin, failed = cols["bad"], cols["origin"], 0
    for idx, why in zip(groups.values(), results):
        for i, w in zip(idx, why):
            if w:
                bad[i] = "gold_does_not_run"
                origin[i] = f"{origin[i]}: {w}"[:300]
                failed += 1
    if failed:
        ds = ds.remove_columns(["bad", "origin"]).add_column("bad", bad).add_column("origin", origin)
    return ds, (rows, failed)


def _format_and_tokenize(batch: dict, formatter, tokenizer, max_seq_len: int):
    import itertools

    import numpy as np
    import pyarrow as pa

    keys = ("kind", "question", "schema", "sample_data", "sql", "messages_json")
    n = len(batch["id"])
    prompts, completions = [], []
    for i in range(n):
        row = {k: batch[k][i] for k in keys}
        p, c = formatter.render(row) if not batch["bad"][i] else ("", "")
        prompts.append(p)
        completions.append(c)
    # the Rust backend directly: batch encoding on all cores, without BatchEncoding overhead
    backend = tokenizer.backend_tokenizer
    p_ids = [e.ids for e in backend.encode_batch(prompts, add_special_tokens=False)]
    c_ids = [e.ids for e in backend.encode_batch(completions, add_special_tokens=False)]
    p_len = np.fromiter(map(len, p_ids), np.int32, n)
    lengths = p_len + np.fromiter(map(len, c_ids), np.int32, n)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(itertools.chain(a, b) for a, b in zip(p_ids, c_ids)),
                       np.int32, int(offsets[-1]))
    bad = [b or ("too_long" if length > max_seq_len else "") for b, length in zip(batch["bad"], lengths.tolist())]
    # input_ids = prompt + completion; the loss mask is derived from prompt_length (completion-only loss)
    new = {"input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
           "prompt_length": pa.array(p_len), "length": pa.array(lengths), "bad": pa.array(bad, pa.string())}
    # A returned Arrow table replaces the batch: carry over the small input columns (the rendered text and
    # the schema are not kept; `tokenizer.decode(input_ids)` gives the exact training text back).
    return pa.table({**{k: pa.array(batch[k], pa.string()) for k in CARRY}, **new})


def _mark_duplicates(ds):
    seen: set = set()
    bad = _column(ds, "bad")
    for i, (src, rid) in enumerate(zip(_column(ds, "source"), _column(ds, "id"))):
        if (src, rid) in seen and not bad[i]:
            bad[i] = "duplicate_id"
        seen.add((src, rid))
    return ds.remove_columns("bad").add_column("bad", bad)


# ------------------------------------------------------------------------------------ mixing
def mix(index_by_source: dict[str, list[int]], sources: list[SourceConfig], names: list[str],
        num_rows: int | None, seed: int):
    """Row indices of the mixture, sampled per source by weight, shuffled; and {source: rows taken}.

    With num_rows, weights are shares of num_rows; without, multipliers on each source's size. A source
    asked for more rows than it has is repeated whole, then topped up without replacement."""
    import numpy as np

    rng = np.random.default_rng(seed)
    total_w = sum(s.weight for s in sources) or 1.0
    picked, taken = [], {}
    for src, name in zip(sources, names):
        idx = np.asarray(index_by_source.get(name, []), dtype=np.int64)
        if not len(idx):
            taken[name] = 0
            continue
        want = round(num_rows * src.weight / total_w) if num_rows else round(len(idx) * src.weight)
        full, part = divmod(want, len(idx))
        chosen = np.concatenate([np.tile(idx, full), rng.choice(idx, size=part, replace=False)])
        picked.append(chosen)
        taken[name] = len(chosen)
    order = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
    return rng.permutation(order), taken


# ------------------------------------------------------------------------------------ report
def _length_plot(lengths: list[int], max_seq_len: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    # bins over the whole axis (0 .. max_seq_len or the longest row): rows of nearly one length are a bar that
    # shows, not a sliver a fraction of a token wide
    top = max(max_seq_len, int(max(lengths, default=0))) + 1
    ax.hist(lengths, bins=60, range=(0, top), color="#3b7dd8")
    ax.axvline(max_seq_len, color="#d62728", linestyle="--", label=f"max_seq_len {max_seq_len}")
    ax.set_xlabel("tokens per example (prompt + completion)")
    ax.set_ylabel("examples")
    ax.set_title("Token lengths of the prepared training data")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _say_phase(done: int) -> None:
    """One progress line a phase, `prepare: 3/8 [what runs now]` (the shape app/ui.py reads as a progress bar)."""
    names = list(PHASES.values())
    print(f"prepare: {done}/{len(names)} [{names[done] if done < len(names) else 'done'}]", flush=True)


def _percentile(sorted_vals, p: float) -> int:
    if not len(sorted_vals):
        return 0
    return int(sorted_vals[min(len(sorted_vals) - 1, math.ceil(p / 100 * len(sorted_vals)) - 1)])


def _report_md(rep: dict) -> str:
    lines = [f"# Prepared data: {rep['run']}", "", f"Tokenizer: `{rep['tokenizer']}`, max_seq_len {rep['max_seq_len']}, "
             f"fast template path: {rep['fast_template']}. Gold SQL run check: {rep['gold_check']}.", "",
             "Every record read is either usable or dropped under one reason: rows in = usable + dropped.", "",
             "| source | rows in | usable | " + " | ".join(REASONS) + " | in mixture |",
             "|---|---:|---:|" + "---:|" * len(REASONS) + "---:|"]
    for name, s in rep["sources"].items():
        lines.append(f"| {name} | {s['rows_in']} | {s['usable']} | "
                     + " | ".join(str(s['dropped'].get(r, 0)) for r in REASONS) + f" | {s['in_mixture']} |")
    named = [(n, r, s["examples"][r]) for n, s in rep["sources"].items() for r in REASONS if s.get("examples", {}).get(r)]
    if named:
        lines += ["", f"Where the dropped rows are (the first {EXAMPLES} per source and reason):", ""]
        lines += [f"- {n}, {r}: " + "; ".join(f"`{a}`" for a in ats) for n, r, ats in named]
        lines += ["", f"Every dropped row, with its reason: {DROPPED}."]
    t = rep["tokens"]
    lines += ["", f"Train rows {rep['train_rows']}, eval rows {rep['eval_rows']}. Tokens per row: mean {t['mean']:.1f}, "
              f"p50 {t['p50']}, p95 {t['p95']}, max {t['max']}; {t['total']} tokens in train, {t['completion']} of them "
              "in completions (the only ones with loss).", "", "![token lengths](lengths.png)", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ stage
def ensure_prepared(cfg: RunConfig) -> Path:
    """The prepared folder for this config's data fingerprint, prepared first if missing (one preparer at a
    time: another process asking for the same data waits for it, then reuses it)."""
    out = runs.prepared_dir(cfg, fingerprint(cfg))
    with FileLock(out.parent / f".{out.name}.lock", f"preparing {out.name}", wait_s=3600):
        if (out / "train.parquet").is_file() and (out / "report.json").is_file():
            return out
        print(f"[train] no prepared data at {out}: preparing it first", flush=True)
        print(_run(cfg, out).summary(), flush=True)
    return out


def run(cfg: RunConfig) -> PrepareResult:
    """Prepare (again) the data of `cfg`; the previous folder for the same fingerprint is replaced only when
    the new one is complete."""
    cfg.validate()
    out = runs.prepared_dir(cfg, fingerprint(cfg))
    with FileLock(out.parent / f".{out.name}.lock", f"preparing {out.name}", wait_s=3600):
        return _run(cfg, out)


def _run(cfg: RunConfig, out_dir: Path) -> PrepareResult:
    import datasets

    t0 = time.time()
    phases: dict[str, float] = {}

    def mark(name: str, since=[t0]) -> None:  # noqa: B006 - a tiny stopwatch
        now = time.time()
        phases[name] = round(now - since[0], 2)
        since[0] = now
        _say_phase(len(phases))

    _say_phase(0)
    if not os.isatty(2):
        datasets.disable_progress_bars()
    tokenizer = load_tokenizer(cfg)
    formatter = ChatFormatter(tokenizer, cfg.data.system_prompt, cfg.data.include_sample_rows)
    mark("tokenizer")

    loaded, names = [], []
    for src in cfg.data.sources + cfg.data.eval_sources:
        ds = load(src)
        name = ds[0]["source"] if len(ds) else (src.name or src.path)
        if name in names:  # the same file twice: keep the rows apart
            name = f"{name}#{len(names)}"
            ds = ds.map(lambda b: {"source": [name] * len(b["id"])}, batched=True)
        loaded.append(ds)
        names.append(name)
    if not any(len(d) for d in loaded[: len(cfg.data.sources)]):
        raise DataError("every training source is empty: nothing to prepare "
                        f"({', '.join(s.path for s in cfg.data.sources)})")
    ds = datasets.concatenate_datasets(loaded)
    ds = _mark_duplicates(ds)
    mark("load")
    gold_check = "off (data.check_sql: false)"
    if cfg.data.check_sql:
        ds = _check_sql(ds, cfg.data.sql_dialect)
        mark("check_sql")
        if (cfg.data.sql_dialect or "sqlite").lower() == "sqlite":
            ds, (checked, failed) = _check_gold(ds)
            gold_check = f"{checked} rows run, {failed} failed"
        else:
            gold_check = f"skipped: the gold SQL is {cfg.data.sql_dialect}, not SQLite"
        mark("check_gold")
    else:
        mark("check_sql")
        mark("check_gold")
    formatter.verify_fast_path([r for r in ds.select(range(min(64, len(ds))))])
    origins = _column(ds, "origin")            # not carried through tokenizing; the row order is kept
    # In-process on purpose: the tokenizer's Rust backend already uses every core, and forked workers
    # would each run it single-threaded after pickling it (measured 3x slower on 2 cores).
    ds = ds.map(_format_and_tokenize, batched=True, batch_size=2000,
                fn_kwargs={"formatter": formatter, "tokenizer": tokenizer, "max_seq_len": cfg.data.max_seq_len},
                desc="formatting + tokenizing", new_fingerprint=f"tok-{time.time_ns()}")

    mark("format_tokenize")
    import numpy as np
    import pyarrow.parquet as pq

    table = ds.with_format("arrow")[:]          # one Arrow table from here on: take/slice/write in C++
    sources, bads = table.column("source").to_pylist(), table.column("bad").to_pylist()
    ids, questions = table.column("id").to_pylist(), table.column("question").to_pylist()
    dropped_rows = []
    per_source = {n: {"rows_in": 0, "dropped": Counter(), "usable": 0, "in_mixture": 0, "examples": defaultdict(list)}
                  for n in names}
    index_by_source: dict[str, list[int]] = defaultdict(list)
    for i, (s, b) in enumerate(zip(sources, bads)):
        per_source[s]["rows_in"] += 1
        if b:
            per_source[s]["dropped"][b] += 1
            if len(per_source[s]["examples"][b]) < EXAMPLES:
                per_source[s]["examples"][b].append(origins[i] or f"id {ids[i]}")
            dropped_rows.append({"source": s, "id": ids[i], "reason": b, "where": origins[i] or f"id {ids[i]}",
                                 "question": (questions[i] or "")[:300]})
        else:
            per_source[s]["usable"] += 1
            index_by_source[s].append(i)

    n_train_src = len(cfg.data.sources)
    train_names, eval_names = names[:n_train_src], names[n_train_src:]
    train_idx, taken = mix(index_by_source, cfg.data.sources, train_names, cfg.data.num_rows, cfg.data.seed)
    eval_idx = np.array([i for n in eval_names for i in index_by_source.get(n, [])], dtype=np.int64)
    if not eval_names and cfg.data.eval_fraction > 0 and len(train_idx) > 10:
        n_eval = max(1, round(len(train_idx) * cfg.data.eval_fraction))
        eval_idx, train_idx = train_idx[:n_eval], train_idx[n_eval:]  # train_idx is already shuffled
    for name, n in taken.items():
        per_source[name]["in_mixture"] = n
    if len(train_idx) == 0:
        why = "; ".join(f"{n}: " + ", ".join(f"{r} {k} (first: {s['examples'][r][0]})" for r, k in s["dropped"].items())
                        for n, s in per_source.items() if s["dropped"])
        raise DataError(f"no usable training rows are left after filtering ({why or 'the sources are empty'})")
    mark("filter_mix_split")

    # ---- write atomically: a staging folder published in one rename
    tmp = staging_dir(out_dir.parent, out_dir.name)
    table = table.select([c for c in KEEP_COLUMNS if c in table.column_names])
    train = table.take(train_idx)
    pq.write_table(train, tmp / "train.parquet")
    if len(eval_idx):
        pq.write_table(table.take(eval_idx), tmp / "eval.parquet")
    mark("write")
    lengths = np.sort(train.column("length").to_numpy())
    comp_tokens = int(lengths.sum() - train.column("prompt_length").to_numpy().sum())
    dropped = Counter()
    for s in per_source.values():
        dropped.update(s["dropped"])
    _length_plot(lengths, cfg.data.max_seq_len, tmp / "lengths.png")
    mark("report")
    seconds = time.time() - t0
    report = {
        "phases_s": phases,
        "fingerprint": fingerprint(cfg), "fingerprint_digest": out_dir.name.rsplit("-", 1)[-1],
        "run": cfg.name, "tokenizer": str(getattr(tokenizer, "name_or_path", "")), "max_seq_len": cfg.data.max_seq_len,
        "fast_template": formatter.fast, "gold_check": gold_check, "train_rows": train.num_rows,
        "eval_rows": len(eval_idx),
        "rows_in": len(ds), "seconds": round(seconds, 2), "rows_per_s": len(ds) / max(seconds, 1e-9),
        "dropped": {r: dropped.get(r, 0) for r in REASONS},
        "sources": {n: {**s, "dropped": {r: s["dropped"].get(r, 0) for r in REASONS}, "examples": dict(s["examples"])}
                    for n, s in per_source.items()},
        "tokens": {"mean": float(lengths.mean()), "p50": _percentile(lengths, 50), "p95": _percentile(lengths, 95),
                   "max": int(lengths[-1]), "total": int(lengths.sum()), "completion": comp_tokens},
    }
    (tmp / "report.json").write_text(json.dumps(report, indent=2))
    (tmp / DROPPED).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in dropped_rows))
    (tmp / "report.md").write_text(_report_md(report))
    publish(tmp, out_dir)
    return PrepareResult(out_dir, report["train_rows"], report["eval_rows"], seconds, report)
