"""Generator of the bundled, execution-verified text-to-SQL dataset (Gretel synthetic_text_to_sql columns).

Each row gets its own database drawn from the lexicon (pipeline/datagen/lexicon/): a connected set of 1-6
entities of one domain with their keys, often with a few tables of another domain, canonical or alternative
names in one naming style, 4-12 rows per table with NULLs (schema.py). A query family (families/) draws an
intent over it in the spec's proportions (~45% one table, ~35% one join or one GROUP BY, ~20% nesting, set
operations, superlatives over groups, three-table and bridge joins; CASE and windows only when worded, DML
rare) and says it as a question, a request, a terse or a sloppy line in the lexicon's words (words.py); the
SQL is rendered in one plain SQLite style (query.py). A row is kept only if it passes `verify`: the context
and the SQL run on SQLite; a query returns a non-empty result that is the same when each table's rows are
inserted in reverse order; an ORDER BY ... LIMIT n has no tie at row n; DML changes rows deterministically.

The test split is held out by domain AND family: its rows come only from HELD_OUT_DOMAINS (which never
appear in train, not even as distractor tables), and the HELD_OUT_FAMILIES never appear in train (the
`template` column names the family). The output is deterministic for a seed, whatever PYTHONHASHSEED.

    sqlgenie generate-data                      # rewrites data/sqlgenie-sql/ (seed 7)
    sqlgenie generate-data --train 100000 --test 0 --out /tmp/big --no-card
"""
from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import SqlgenieError
from pipeline.datagen.families import FAMILIES, TIER_GROUPS, TIERS, WORDED, Ctx, Family, Skip
from pipeline.datagen.lexicon import load_all
from pipeline.datagen.query import explain, render, tie_probe
from pipeline.datagen.schema import SIZE_WEIGHTS, SIZES, build_schema
from pipeline.datagen.words import REGISTERS, finish
from sql.results import result_rows, same_result
from sql.sandbox import Sandbox, SandboxError

GRETEL_COLUMNS = [
    "id", "domain", "domain_description", "sql_complexity", "sql_complexity_description", "sql_task_type",
    "sql_task_type_description", "sql_prompt", "sql_context", "sql", "sql_explanation",
]
GRETEL_EXTRA = ["template"]
COMPLEXITY_DESCRIPTIONS = {
    "basic SQL": "basic SQL with a simple select, insert, update or delete statement",
    "aggregation": "aggregation functions (COUNT, SUM, AVG, MIN, MAX), with GROUP BY and HAVING",
    "single join": "exactly one join between two tables",
    "multiple joins": "two joins across three tables (a chain of keys or a many-to-many bridge)",
    "subqueries": "IN, NOT IN, NOT EXISTS and scalar subqueries",
    "window functions": "window functions (RANK, running SUM), only when the question asks for them",
    "set operations": "set operations (INTERSECT, EXCEPT)",
}
TASK_DESCRIPTIONS = {
    "analytics and reporting": "generating reports, aggregates and analytical insights",
    "data retrieval": "fetching the rows that match a condition",
    "data manipulation": "inserting, updating or deleting records",
}
DEFAULT_TRAIN, DEFAULT_TEST = 20000, 1200
# held out for the test split: two domains of each lexicon module (those present are used)
HELD_OUT_DOMAINS = ("car_rental", "insurance_claims", "veterinary_clinic", "seismology", "golf_club",
                    "dance_school", "laundry_service", "mining_operations")
HELD_OUT_FAMILIES = ("between_range", "join_count_where", "not_exists_child", "bridge_count")
REGISTER_WEIGHTS = (0.45, 0.35, 0.2)          # question, imperative, terse
SLOPPY_SHARE = 0.15                           # of any register: lower-cased words, no punctuation
TRIES_PER_FAMILY = 25                         # attempts at one drawn family before drawing another
MAX_TIER_MISSES = 20                          # draws of a tier in a row without a row: the tier is given up


class DataGenError(SqlgenieError):
    """The generator cannot produce what was asked (no held-out domain in the lexicon, no domain at all)."""


@dataclass
class Stats:
    attempts: int = 0
    kept: int = 0
    rejected: collections.Counter = field(default_factory=collections.Counter)   # reason -> count
    schemas: set = field(default_factory=set)                                    # distinct schemas' names
    tables: collections.Counter = field(default_factory=collections.Counter)     # tables per kept row


# ---------------------------------------------------------------------------------- verification
def _outcome(context: str, sql: str, writes: bool, probe: str | None = None):
    with Sandbox.from_context(context, timeout_s=2.0, max_rows=10_000) as box:
        res = box.query(sql, read_only=not writes)
        if writes:
            return res.changes, box.state(), None
        return None, result_rows(res.rows), (box.query(probe).rows if probe else None)


def verify(sql, task_type: str, context: str, context_reversed: str, probe: str | None = None,
           limit: int | None = None) -> str | None:
    """None when the SQL is sound on its context, else the reason it is rejected. `probe` (with `limit`): the
    query's sort keys without its LIMIT, to refuse a tie at the limit."""
    sql = getattr(sql, "sql", sql)
    writes = task_type == "data manipulation" or task_type == "data definition"
    try:
        changes, out, keys = _outcome(context, sql, writes, probe)
        changes_r, out_r, _ = _outcome(context_reversed, sql, writes)
    except SandboxError as e:
        return f"sql_{e.kind}"
    if task_type == "data manipulation":
        return None if changes and out == out_r else ("no_rows_changed" if not changes else "nondeterministic")
    if task_type == "data definition":
        return None if out == out_r else "nondeterministic"
    if not out or all(all(x is None for x in r) for r in out):
        return "empty_result"
    if keys is not None and limit is not None and len(keys) > limit and keys[limit - 1] == keys[limit]:
        return "tie_at_limit"
    return None if same_result(sql, out, out_r) else "nondeterministic"


# ---------------------------------------------------------------------------------- generation
def lexicon() -> list:
    return list(load_all())


def _fits(d, needs: str) -> bool:
    if needs == "bridge":
        return bool(d.bridges)
    if needs == "link":
        return bool(d.relations)
    if needs == "chain":
        rel = d.relations
        return any(a.parent == b.child and b.parent != a.child for a in rel for b in rel)
    return True


MIN_SIZE = {"one": 1, "link": 2, "bridge": 2, "chain": 3}


def _filters(cx: Ctx) -> list[dict]:
    out = []
    for c, words in cx.filters:
        col = getattr(c.left, "column", None)
        if col is None:
            continue
        value = c.value if not hasattr(c.value, "select") else None
        t = c.left.ref.table
        out.append({"table": t.name, "column": col.name, "op": c.op, "value": value, "words": words,
                    "domain": t.domain.key, "entity": t.entity.key if t.entity else None,
                    "attr": col.attr.name if col.attr else None})
    return out


def generate(n: int, seed: int, exclude: set[tuple[str, str]] | None = None, id_offset: int = 1,
             stats: Stats | None = None, progress=None, domains: list | None = None,
             families: list[Family] | None = None, meta: list | None = None) -> list[dict]:
    """n verified rows in Gretel's columns (+ `template`, the family) from `domains` x `families` (default: the
    whole lexicon, every family); (sql_prompt, sql) pairs in `exclude` are never emitted. `meta`, if given,
    gets one dict per row: the family, tier, register, the schema's tables and the filters said (table,
    column, operator, value and the words that said it)."""
    rng = random.Random(seed)
    stats = stats if stats is not None else Stats()
    exclude = exclude or set()
    domains = list(domains) if domains is not None else lexicon()
    if not domains:
        raise DataGenError("the lexicon has no domain: add one to pipeline/datagen/lexicon/ (see types.py)")
    fams = list(families) if families is not None else list(FAMILIES.values())
    by_tier = {t: [f for f in fams if f.tier == t] for t in TIERS}
    tiers = [t for t in TIERS if by_tier[t]]
    done = collections.Counter()
    misses = collections.Counter()           # a tier's draws in a row that gave no row
    out: list[dict] = []
    while len(out) < n:
        if not tiers:
            raise DataGenError(f"no query family fits these domains ({', '.join(d.key for d in domains)})")
        total = sum(TIERS[t] for t in tiers)
        # the tier furthest behind its share: the proportions hold at every size, whatever gets rejected
        tier = max(tiers, key=lambda t: TIERS[t] / total * (len(out) + 1) - done[t])
        fam = rng.choices(by_tier[tier], [f.weight for f in by_tier[tier]])[0]
        fitting = [d for d in domains if _fits(d, fam.needs)]
        row = None
        if not fitting:
            stats.rejected["no_domain_for_family"] += 1
        for _ in range(TRIES_PER_FAMILY if fitting else 0):
            row = _attempt(fam, fitting, domains, rng, stats, exclude, id_offset + len(out), meta)
            if row is not None:
                break
        if row is None:
            misses[tier] += 1
            if misses[tier] >= MAX_TIER_MISSES:        # these domains cannot give this tier: share out the rest
                tiers.remove(tier)
                stats.rejected[f"tier_given_up:{tier}"] += 1
            continue
        misses[tier] = 0
        out.append(row)
        done[tier] += 1
        if progress:
            progress(1)
    return out


def _attempt(fam: Family, fitting: list, domains: list, rng: random.Random, stats: Stats, exclude: set,
             row_id: int, meta: list | None) -> dict | None:
    stats.attempts += 1
    d = rng.choice(fitting)
    size = max(MIN_SIZE[fam.needs], rng.choices(SIZES, SIZE_WEIGHTS)[0])
    others = [o for o in domains if o.key != d.key]
    try:
        schema = build_schema(d, rng, others, size=size)
    except ValueError:
        stats.rejected["lexicon_entry_unusable"] += 1
        return None
    register = rng.choices(REGISTERS, REGISTER_WEIGHTS)[0]
    sloppy = rng.random() < SLOPPY_SHARE
    cx = Ctx(schema, rng, register)
    try:
        built = fam.build(cx)
    except Skip:
        stats.rejected["family_does_not_fit_schema"] += 1
        return None
    sql = render(built.query)
    question = finish(built.text, sloppy, rng)
    if "{" in question or "}" in question or not question:
        stats.rejected["unfilled_words"] += 1
        return None
    if (question, sql) in exclude:
        stats.rejected["held_out_pair"] += 1
        return None
    probe = tie_probe(built.query) if hasattr(built.query, "limit") else None
    context = schema.render()
    reason = verify(sql, fam.task, context, schema.render(reverse=True),
                    probe=render(probe) if probe else None, limit=getattr(built.query, "limit", None))
    if reason:
        stats.rejected[reason] += 1
        return None
    stats.kept += 1
    stats.schemas.add(schema.names())
    stats.tables[len(schema.tables)] += 1
    if meta is not None:
        meta.append({
            "family": fam.name, "tier": fam.tier, "register": register, "sloppy": sloppy,
            "subject": built.subject.name, "tables": {t.name: [c.name for c in t.columns] for t in schema.tables},
            "distractors": [t.name for t in schema.tables if t.distractor], "filters": _filters(cx),
            "domains": sorted({t.domain.key for t in schema.tables}),
            "marked": built.text, "style": schema.style.name,
        })
    return {
        "id": row_id, "domain": d.key, "domain_description": d.description,
        "sql_complexity": fam.complexity, "sql_complexity_description": COMPLEXITY_DESCRIPTIONS[fam.complexity],
        "sql_task_type": fam.task, "sql_task_type_description": TASK_DESCRIPTIONS[fam.task],
        "sql_prompt": question, "sql_context": context, "sql": sql, "sql_explanation": explain(built.query),
        "template": fam.name,
    }


def write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [("id", pa.int64())] + [(c, pa.string()) for c in GRETEL_COLUMNS[1:] + GRETEL_EXTRA]))
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=12)
    tmp.replace(path)


# ---------------------------------------------------------------------------------------- the card
def _count_table(train: list[dict], test: list[dict], key: str, title: str | None = None, fn=None) -> str:
    get = fn or (lambda r: r[key])
    c_train = collections.Counter(get(r) for r in train)
    c_test = collections.Counter(get(r) for r in test)
    nt, ns = max(len(train), 1), max(len(test), 1)
    lines = [f"| {title or key} | train | % | test | % |", "|---|---:|---:|---:|---:|"]
    for k in sorted(set(c_train) | set(c_test)):
        lines.append(f"| {k} | {c_train[k]} | {100 * c_train[k] / nt:.1f} | {c_test[k]} | {100 * c_test[k] / ns:.1f} |")
    return "\n".join(lines)


def tier_of(row: dict) -> str:
    return TIER_GROUPS[FAMILIES[row["template"]].tier]


def card(train: list[dict], test: list[dict], seed: int, stats: Stats) -> str:
    rej = ", ".join(f"{k}: {v}" for k, v in stats.rejected.most_common()) or "none"
    total_rej = sum(stats.rejected.values())
    n = len(train) + len(test)
    worded = sum(r["template"] in WORDED for r in train)
    dml = sum(r["sql_task_type"] == "data manipulation" for r in train)
    fam_names = sorted({r["template"] for r in train + test})
    return f"""# sqlgenie-sql: the bundled, execution-verified text-to-SQL dataset

Generated by `sqlgenie generate-data` (pipeline/datagen/, seed {seed}); do not edit by hand.
Columns are exactly those of Gretel's `synthetic_text_to_sql` plus `template` (the query family).

- {len(train)} train rows, {len(test)} test rows; {len({r['domain'] for r in train})} train domains,
  {len({r['domain'] for r in test})} test domains, {len(fam_names)} query families; questions phrased as questions,
  requests, terse lines and sloppy lines ({int(SLOPPY_SHARE * 100)}%: lower-cased words, never the values) in the
  lexicon's words for each table and column.
- Every row has its own database: a connected set of 1-6 tables of one domain with primary and foreign keys,
  often with 1-3 tables of another domain, canonical or alternative table and column names in one naming
  style, 4-12 rows per table with NULLs. {len(stats.schemas)} distinct schemas (by table and column names)
  among {n} rows.
- The test split is held out by domain and family: its domains ({', '.join(sorted({r['domain'] for r in test}))
  or 'none'}) never appear in train (not even as distractor tables), and the families
  {', '.join(HELD_OUT_FAMILIES)} are in test only.
- Every row was verified on SQLite: queries return a non-empty result that does not change when each table's
  rows are inserted in reverse order, with no tie at an ORDER BY ... LIMIT; DML changes rows deterministically.
  Attempts: {stats.attempts}, kept: {stats.kept}, rejected: {total_rej} ({rej}).
- CASE and window functions only where the question asks for them in words: {worded} train rows
  ({100 * worded / max(len(train), 1):.1f}%); DML {dml} train rows ({100 * dml / max(len(train), 1):.1f}%); no DDL.
- No (question, SQL) pair of the test split appears in the train split. License: Apache-2.0, like the project.

{_count_table(train, test, 'tier', 'share of rows', tier_of)}

{_count_table(train, test, 'sql_complexity')}

{_count_table(train, test, 'sql_task_type')}

{_count_table(train, test, 'template', 'family')}

{_count_table(train, test, 'domain')}
"""


def run(out_dir: Path, n_train: int, n_test: int, seed: int = 7, write_card: bool = True) -> dict:
    import sys

    from tqdm import tqdm

    domains = lexicon()
    held_domains = [d for d in domains if d.key in HELD_OUT_DOMAINS]
    train_domains = [d for d in domains if d.key not in HELD_OUT_DOMAINS]
    if n_test and not held_domains:
        raise DataGenError(f"no held-out domain ({', '.join(HELD_OUT_DOMAINS)}) is in the lexicon yet: pass "
                           f"--test 0, or add one of them to pipeline/datagen/lexicon/")
    if n_train and not train_domains:
        raise DataGenError("every lexicon domain is held out for the test split: add a domain to "
                           "pipeline/datagen/lexicon/ or pass --train 0")
    train_families = [f for f in FAMILIES.values() if f.name not in HELD_OUT_FAMILIES]
    stats = Stats()
    with tqdm(total=n_train + n_test, desc="generating verified rows", unit="row",
              mininterval=0.5 if sys.stderr.isatty() else 15) as bar:
        test = generate(n_test, seed + 1, stats=stats, progress=bar.update, domains=held_domains) if n_test else []
        held = {(r["sql_prompt"], r["sql"]) for r in test}
        train = generate(n_train, seed, exclude=held, id_offset=1, stats=stats, progress=bar.update,
                         domains=train_domains, families=train_families) if n_train else []
    for r in test:
        r["id"] += n_train
    out_dir = Path(out_dir)
    write_parquet(train, out_dir / "train.parquet")
    if test:
        write_parquet(test, out_dir / "test.parquet")
    if write_card:
        (out_dir / "README.md").write_text(card(train, test, seed, stats), encoding="utf-8")
    return {"train": len(train), "test": len(test), "attempts": stats.attempts, "rejected": dict(stats.rejected),
            "distinct_schemas": len(stats.schemas), "out_dir": str(out_dir)}

