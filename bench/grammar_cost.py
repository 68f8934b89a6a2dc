"""What the schema grammar (sql/grammar.py) costs xgrammar per decode step, and what it accepts.

vLLM fills a token mask with xgrammar before every decode step of a constrained sequence; on a GPU one step
of the 135M model is ~1.5 ms, so that host-side work must be well under it. This steps each gold SELECT of a
seeded sample of the bundled training rows through a GrammarMatcher token by token (the SmolLM2 tokenizer),
timing every `fill_next_token_bitmask` (the end-of-sequence step included) and the compile of each row's
grammar with `time.thread_time()`, so that other work on a shared CPU does not count: cold (cache off, one
thread) and warm (one compiler per grammar with its cache on, kept across rows as vLLM keeps one, so rules
compiled for earlier schemas are reused; the mean over all rows but the first).
It also checks that every gold query of data/ood and data/ood2 is accepted (acceptance only: nothing here
looks at their answers).

Several grammars are compared in the same run, row by row in turn, so that drift on a loaded machine hits
them alike: `--grammar NAME=SPEC` where SPEC is a path to a Python file with `schema_grammar(ddl)` or
`git:REV` (sql/grammar.py at that revision).

    sqlgenie bench grammar_cost --grammar before=git:dc060b4 --grammar after=sql/grammar.py --rows 300
Prints one table last; --out writes the per-token times as JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / ".sqlgenie" / "models" / "smollm2-135m-instruct"


def load_grammar(spec: str):
    """The `schema_grammar` function of a file path or of `git:REV` (sql/grammar.py at that revision)."""
    if spec.startswith("git:"):
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{spec[4:]}:sql/grammar.py"],
                                capture_output=True, text=True, check=True).stdout
        module = sys.modules[f"grammar_{spec[4:]}"] = types.ModuleType(f"grammar_{spec[4:]}")   # dataclasses look here
        exec(compile(source, f"{spec}:sql/grammar.py", "exec"), module.__dict__)
        return module.schema_grammar
    path = Path(spec) if Path(spec).is_absolute() else ROOT / spec
    loaded = importlib.util.spec_from_file_location(f"grammar_{path.stem}", path)
    module = sys.modules[loaded.name] = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module.schema_grammar


def training_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """(schema DDL, gold SQL) of `n` training rows whose gold is a read, drawn with `seed`."""
    import pyarrow.parquet as pq

    from sql.statements import split_context

    table = pq.read_table(ROOT / "data" / "sqlgenie-sql" / "train.parquet", columns=["sql_context", "sql"])
    rows = [r for r in table.to_pylist() if r["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    random.Random(seed).shuffle(rows)
    return [(split_context(r["sql_context"])[0], r["sql"]) for r in rows[:n]]


def yardstick_golds() -> dict[str, list[tuple[str, str]]]:
    from pipeline.data import ood
    from sql.statements import split_context

    out = {}
    for name in ood.SPLITS:
        schemas = {k: split_context(v)[0] for k, v in ood.schemas(name).items()}
        out[name] = [(schemas[q["db_id"]], q["query"]) for q in ood.questions(name)]
    return out


class Stepper:
    """Compiles grammars and steps token ids through them, timing each part on this thread's CPU clock."""

    def __init__(self):
        import xgrammar as xgr
        from transformers import AutoTokenizer

        self.xgr = xgr
        self.tok = AutoTokenizer.from_pretrained(TOKENIZER)
        self.info = xgr.TokenizerInfo.from_huggingface(self.tok, vocab_size=len(self.tok))
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.shared: dict = {}     # per grammar: a compiler with its cache on, kept across rows as vLLM keeps one
        self.bitmask = xgr.allocate_token_bitmask(1, self.info.vocab_size)
        self.eos = self.info.stop_token_ids[0]

    def run(self, name: str, grammar: str, sql: str) -> dict:
        t = time.thread_time()
        compiled = self.compiler.compile_grammar(grammar)
        compile_s = time.thread_time() - t
        shared = self.shared.setdefault(name, self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=True))
        t = time.thread_time()
        shared.compile_grammar(grammar)            # rules compiled for earlier schemas come from its cache
        cached_s = time.thread_time() - t
        matcher = self.xgr.GrammarMatcher(compiled)
        steps, accept, ok = [], [], True
        for tid in self.tok.encode(sql, add_special_tokens=False) + [self.eos]:
            t = time.thread_time()
            matcher.fill_next_token_bitmask(self.bitmask)
            steps.append(time.thread_time() - t)
            allowed = (int(self.bitmask[0, tid // 32]) >> (tid % 32)) & 1    # what vLLM lets the model pick
            t = time.thread_time()
            ok = bool(allowed) and matcher.accept_token(tid)
            accept.append(time.thread_time() - t)
            if not ok:
                break
        return {"compile_s": compile_s, "cached_s": cached_s, "steps": steps, "accept": accept,
                "accepted": ok and matcher.is_terminated()}


def accepts(grammar: str, sql: str) -> bool:
    from xgrammar.testing import _is_grammar_accept_string

    return _is_grammar_accept_string(grammar, sql)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grammar", action="append", default=[], metavar="NAME=SPEC",
                    help="a grammar to measure: NAME=path/to/grammar.py or NAME=git:REV (repeatable)")
    ap.add_argument("--rows", type=int, default=300, help="training rows to step through (default 300)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--worst", type=int, default=0, help="also print the N slowest steps with their context")
    ap.add_argument("--no-yardsticks", action="store_true", help="skip the data/ood and data/ood2 acceptance")
    ap.add_argument("--out", type=Path, help="write per-row compile and step times as JSON here")
    args = ap.parse_args()
    specs = args.grammar or ["current=sql/grammar.py"]
    grammars = {}
    for s in specs:
        name, _, spec = s.partition("=")
        if not spec:
            ap.error(f"--grammar {s!r}: write NAME=SPEC (SPEC a .py path or git:REV)")
        grammars[name] = load_grammar(spec)

    stepper = Stepper()
    rows = training_rows(args.rows, args.seed)
    res = {n: {"compile": [], "cached": [], "steps": [], "accept": [], "accepted": 0, "rejected": [], "worst": []}
           for n in grammars}
    for i, (ddl, sql) in enumerate(rows):
        order = list(grammars) if i % 2 == 0 else list(reversed(grammars))   # alternate who goes first
        for name in order:
            r = stepper.run(name, grammars[name](ddl), sql)
            out = res[name]
            out["compile"].append(r["compile_s"])
            out["cached"].append(r["cached_s"])
            out["steps"] += r["steps"]
            out["accept"] += r["accept"]
            out["accepted"] += r["accepted"]
            if not r["accepted"]:
                out["rejected"].append(sql)
            if args.worst:
                ids = stepper.tok.encode(sql, add_special_tokens=False)
                out["worst"] += [(dt, stepper.tok.decode(ids[max(0, k - 8):k]) + " | " + stepper.tok.decode(ids[k:k + 1]))
                                 for k, dt in enumerate(r["steps"])]
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(rows)} rows", file=sys.stderr, flush=True)

    yard = {} if args.no_yardsticks else yardstick_golds()
    for name, g in grammars.items():
        cache = {}
        res[name]["yardsticks"] = {}
        for split, pairs in yard.items():
            bad = [sql for ddl, sql in pairs if not accepts(cache.setdefault(ddl, g(ddl)), sql)]
            res[name]["yardsticks"][split] = (len(pairs) - len(bad), len(pairs), bad)

    print(f"\n{len(rows)} training golds (seed {args.seed}), SmolLM2 tokenizer, xgrammar thread CPU time")
    print("| grammar | compile ms | compile ms, warm cache | mask ms/token mean | p50 | p99 | max | accept ms/token "
          "| steps | train accepted |" + "".join(f" {s} accepted |" for s in yard))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(yard))
    for name, r in res.items():
        st = [x * 1000 for x in r["steps"]]
        cells = [f"{statistics.mean(r['compile']) * 1000:.0f}", f"{statistics.mean(r['cached'][1:] or [0]) * 1000:.0f}",
                 f"{statistics.mean(st):.3f}", f"{pct(st, .5):.3f}",
                 f"{pct(st, .99):.2f}", f"{max(st):.1f}", f"{statistics.mean(r['accept']) * 1000:.3f}", str(len(st)),
                 f"{r['accepted']}/{len(rows)}"]
        cells += [f"{ok}/{n}" for ok, n, _ in r["yardsticks"].values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name, r in res.items():
        for sql in r["rejected"][:5]:
            print(f"  {name} rejects training gold: {sql[:160]}")
        for split, (_, _, bad) in r["yardsticks"].items():
            for sql in bad[:5]:
                print(f"  {name} rejects {split} gold: {sql[:160]}")
        for dt, ctx in sorted(r["worst"], reverse=True)[:args.worst]:
            print(f"  {name} slow step {dt * 1000:8.2f} ms  {ctx!r}")
    if args.out:
        args.out.write_text(json.dumps({n: {"compile_s": r["compile"], "cached_compile_s": r["cached"],
                                            "step_s": r["steps"], "accept_s": r["accept"]} for n, r in res.items()}))


if __name__ == "__main__":
    main()
