"""Generator of the bundled, execution-verified text-to-SQL dataset (Gretel synthetic_text_to_sql columns).

Each row gets its own small database: every table of its domain (with primary and foreign keys) plus, often,
one or two unrelated tables of another domain, filled with freshly drawn values, in one of several naming
styles (snake_case, camelCase, PascalCase, prefixed, abbreviated, "Quoted Spaces", UPPER: style.py), so the
model has to choose the tables a question needs and cannot rely on column names repeating the question's
words. Questions come in 2-4 phrasings per template, a quarter of them made terse or sloppy. A row is kept
only if it passes `verify`: the context and the SQL run on SQLite; a query returns a non-empty result that is
the same when the rows are inserted in reverse order (no reliance on physical order or ties); DML changes
rows deterministically; DDL runs.

The test split is held out by domain AND template family: its rows come only from HELD_OUT_DOMAINS, and
the HELD_OUT_FAMILIES templates never appear in train (the `template` column says which family a row is).

    sqlgenie generate-data                      # rewrites data/sqlgenie-sql/ (seed 7)
    sqlgenie generate-data --train 100000 --test 0 --out /tmp/big --no-card
"""
from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.datagen.domains import DOMAINS, Domain, Table
from pipeline.datagen.style import Style, quoted, rewrite, sloppy
from pipeline.datagen.templates import DDL, DML, TEMPLATES, Case, Ctx, Template, q
from sql.results import result_rows, same_result
from sql.sandbox import Sandbox, SandboxError

GRETEL_COLUMNS = [
    "id", "domain", "domain_description", "sql_complexity", "sql_complexity_description", "sql_task_type",
    "sql_task_type_description", "sql_prompt", "sql_context", "sql", "sql_explanation",
]
COMPLEXITY_DESCRIPTIONS = {
    "basic SQL": "basic SQL with a simple select, insert, update, delete or DDL statement",
    "aggregation": "aggregation functions (COUNT, SUM, AVG, MIN, MAX) with GROUP BY and HAVING",
    "single join": "exactly one join between two tables",
    "multiple joins": "two or more joins across three tables",
    "subqueries": "scalar, IN and NOT IN subqueries, also inside UPDATE and DELETE",
    "window functions": "window functions (RANK, ROW_NUMBER, LAG, running SUM) with partitioning and ordering",
    "set operations": "set operations such as UNION, INTERSECT and EXCEPT",
    "CTEs": "common table expressions (WITH ... AS) feeding an outer query",
}
TASK_DESCRIPTIONS = {
    "analytics and reporting": "generating reports, aggregates and analytical insights",
    "data retrieval": "fetching the rows that match a condition",
    "data manipulation": "inserting, updating or deleting records",
    "data definition": "creating or altering tables, views and indexes",
}
DEFAULT_TRAIN, DEFAULT_TEST = 20000, 1200
HELD_OUT_DOMAINS = ("legal", "fisheries", "fashion", "pharma", "restaurants", "automotive", "nonprofit")
HELD_OUT_FAMILIES = ("in_and_between", "min_max_per_group", "join_count_per_category", "joins_avg_per_group_attr",
                     "max_subquery", "lag_difference", "except_events", "cte_monthly")
SLOPPY_SHARE = 0.25
WIDE_SHARE = 0.15
GRETEL_EXTRA = ["template"]
SQL_TYPES = {"label": "VARCHAR(50)", "cat": "VARCHAR(30)", "int": "INT", "real": "DECIMAL(12,2)", "date": "DATE"}


@dataclass
class Stats:
    attempts: int = 0
    kept: int = 0
    rejected: collections.Counter = None  # reason -> count

    def __post_init__(self):
        self.rejected = collections.Counter()


# ------------------------------------------------------------------------------------------ data
def _columns(d: Domain, key: str) -> list[tuple[str, str, str]]:
    """(column, kind, sql type) of table g / e / v."""
    t = {"g": d.group, "e": d.entity, "v": d.event}[key]
    num = ("int" if t.num_int else "real")
    if key == "g":
        return [("id", "int", "INT"), ("name", "label", SQL_TYPES["label"]), (t.cat_col, "cat", SQL_TYPES["cat"])]
    if key == "e":
        return [("id", "int", "INT"), (t.label_col, "label", SQL_TYPES["label"]), (d.fk_entity, "fk", "INT"),
                (t.cat_col, "cat", SQL_TYPES["cat"]), (t.num_col, "num", SQL_TYPES[num]), (t.date_col, "date", "DATE")]
    return [("id", "int", "INT"), (d.fk_event, "fk", "INT"), (t.cat_col, "cat", SQL_TYPES["cat"]),
            (t.num_col, "num", SQL_TYPES[num]), (t.date_col, "date", "DATE")]


def _unique_nums(rng: random.Random, t: Table, n: int) -> list:
    lo, hi = t.num_range
    seen: set = set()
    out = []
    unique = not t.num_int or hi - lo + 1 >= 2 * n   # small integer ranges (ratings 1-5) may repeat
    while len(out) < n:
        x = rng.randint(int(lo), int(hi)) if t.num_int else round(rng.uniform(lo, hi), 2)
        if x not in seen or not unique:
            seen.add(x)
            out.append(x)
    return out


def _unique_dates(rng: random.Random, n: int) -> list[str]:
    # a dict, not a set: set order of strings changes with PYTHONHASHSEED, so the same seed gave
    # different data in every process
    out: dict[str, None] = {}
    while len(out) < n:
        out[f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"] = None
    return list(out)


def make_rows(d: Domain, rng: random.Random) -> dict[str, list[dict]]:
    g, e, v = d.group, d.entity, d.event
    ng, ne, nv = rng.randint(3, 5), rng.randint(4, 7), rng.randint(5, 9)
    gnames = rng.sample(g.labels, ng)
    rows = {"g": [{"id": i + 1, "name": gnames[i], g.cat_col: rng.choice(g.cats)} for i in range(ng)]}
    labels = rng.sample(e.labels, min(ne, len(e.labels)))
    ne = len(labels)
    nums, dates = _unique_nums(rng, e, ne), _unique_dates(rng, ne)
    rows["e"] = [{"id": i + 1, e.label_col: labels[i], d.fk_entity: rng.randint(1, ng), e.cat_col: rng.choice(e.cats),
                  e.num_col: nums[i], e.date_col: dates[i]} for i in range(ne)]
    nums, dates = _unique_nums(rng, v, nv), _unique_dates(rng, nv)
    rows["v"] = [{"id": i + 1, d.fk_event: rng.randint(1, ne), v.cat_col: rng.choice(v.cats), v.num_col: nums[i],
                  v.date_col: dates[i]} for i in range(nv)]
    return rows


@dataclass
class Layout:
    """How one row's database looks: the style and which tables (of which domains) it has."""
    style: Style
    tables: list[tuple[Domain, str, dict]]   # (domain, "g" | "e" | "v", its rows) in creation order


def name_maps(d: Domain, style: Style) -> tuple[dict[str, str], dict[str, str]]:
    """Template name -> styled name, for the domain's tables and every column."""
    tables = {t.name: style.table(t.name) for t in (d.group, d.entity, d.event)}
    cols = {c: style.column(c) for key in "gev" for c, _, _ in _columns(d, key)}
    return tables, cols


def render_context(layout: Layout, reverse: bool = False) -> str:
    parts = []
    for d, key, rows in layout.tables:
        t = {"g": d.group, "e": d.entity, "v": d.event}[key]
        tmap, cmap = name_maps(d, layout.style)
        cols = _columns(d, key)
        names = [c[0] for c in cols]
        parent = {"e": d.group.name, "v": d.entity.name}.get(key)
        defs = []
        for c, kind, typ in cols:
            extra = " PRIMARY KEY" if c == "id" else (f" REFERENCES {quoted(tmap[parent])}({quoted(cmap['id'])})"
                                                      if kind == "fk" else "")
            defs.append(f"{quoted(cmap[c])} {typ}{extra}")
        parts.append(f"CREATE TABLE {quoted(tmap[t.name])} ({', '.join(defs)});")
        data = rows[::-1] if reverse else rows
        values = ", ".join("(" + ", ".join(q(r[c]) for c in names) + ")" for r in data)
        parts.append(f"INSERT INTO {quoted(tmap[t.name])} ({', '.join(quoted(cmap[c]) for c in names)}) VALUES {values};")
    return " ".join(parts)


def make_layout(d: Domain, rows: dict[str, list[dict]], rng: random.Random) -> Layout:
    """All of the domain's tables (parents first), often with one or two tables of another domain, and in one
    row in seven with every table of one or two other domains (wide schemas: 6-9 tables, long prompts)."""
    style = Style.pick(rng)
    tables = [(d, k, rows[k]) for k in "gev"]
    r = rng.random()
    if r < WIDE_SHARE:
        names = {t.name for t in (d.group, d.entity, d.event)}
        for other in rng.sample([o for o in DOMAINS if o.key != d.key], rng.randint(1, 2)):
            onames = {other.group.name, other.entity.name, other.event.name}
            if onames & names:
                continue
            names |= onames
            orows = make_rows(other, rng)
            extra = [(other, k, orows[k]) for k in "gev"]
            tables = tables + extra if rng.random() < 0.5 else extra + tables
        return Layout(style, tables)
    if r < 0.6:
        ours = {t.name for t in (d.group, d.entity, d.event)}
        other = rng.choice([o for o in DOMAINS if o.key != d.key and
                            not ({o.group.name, o.entity.name, o.event.name} & ours)])
        orows = make_rows(other, rng)
        extra = [(other, "g", orows["g"])] + ([(other, "e", orows["e"])] if r < 0.25 else [])
        tables = tables + extra if rng.random() < 0.5 else extra + tables
        if any(k == "e" for o, k, _ in extra) and [k for o, k, _ in tables if o is other] == ["e", "g"]:
            tables = [t for t in tables if t[0] is not other] + extra   # a parent before its child
    return Layout(style, tables)


# ---------------------------------------------------------------------------------- verification
def _outcome(context: str, sql: str, task_type: str):
    with Sandbox.from_context(context, timeout_s=2.0, max_rows=10_000) as box:
        writes = task_type in (DML, DDL)
        res = box.query(sql, read_only=not writes)
        if writes:
            return res.changes, box.state()
        return None, result_rows(res.rows)


def verify(case: Case, task_type: str, context: str, context_reversed: str) -> str | None:
    """None when the case is sound, else the reason it is rejected."""
    try:
        changes, out = _outcome(context, case.sql, task_type)
        changes_r, out_r = _outcome(context_reversed, case.sql, task_type)
    except SandboxError as e:
        return f"sql_{e.kind}"
    if task_type == DML:
        return None if changes and out == out_r else ("no_rows_changed" if not changes else "nondeterministic")
    if task_type == DDL:
        return None if out == out_r else "nondeterministic"
    if not out or all(all(x is None for x in r) for r in out):
        return "empty_result"
    return None if same_result(case.sql, out, out_r) else "nondeterministic"


# ---------------------------------------------------------------------------------- generation
def generate(n: int, seed: int, exclude: set[tuple[str, str]] | None = None, id_offset: int = 1,
             stats: Stats | None = None, progress=None, domains: list[Domain] | None = None,
             templates: list[Template] | None = None) -> list[dict]:
    """n verified rows in Gretel's columns (+ `template`) from `domains` x `templates`; (sql_prompt, sql) pairs
    in `exclude` are never emitted."""
    rng = random.Random(seed)
    stats = stats or Stats()
    exclude = exclude or set()
    domains = domains or DOMAINS
    templates = templates or TEMPLATES
    weights = [t.weight for t in templates]
    out: list[dict] = []
    while len(out) < n:
        d = domains[len(out) % len(domains)] if rng.random() < 0.5 else rng.choice(domains)
        tpl: Template = rng.choices(templates, weights)[0]
        stats.attempts += 1
        ctx = Ctx(d, rng, make_rows(d, rng))
        try:
            case = tpl.build(ctx)
        except (IndexError, ValueError):
            stats.rejected["template_not_applicable"] += 1
            continue
        question = rng.choice(case.questions)
        if rng.random() < SLOPPY_SHARE:
            question = sloppy(question, rng)
        if (question, case.sql) in exclude:
            stats.rejected["held_out_pair"] += 1
            continue
        layout = make_layout(d, ctx.rows, rng)
        try:
            sql = rewrite(case.sql, *name_maps(d, layout.style))
        except Exception:  # noqa: BLE001 - a template sqlglot cannot round-trip in this style: skip the row
            stats.rejected["style_rewrite"] += 1
            continue
        case = Case(sql, case.questions, case.explanation, case.tables)
        context = render_context(layout)
        reason = verify(case, tpl.task_type, context, render_context(layout, reverse=True))
        if reason:
            stats.rejected[reason] += 1
            continue
        stats.kept += 1
        out.append({
            "id": id_offset + len(out), "domain": d.key, "domain_description": d.description,
            "sql_complexity": tpl.complexity, "sql_complexity_description": COMPLEXITY_DESCRIPTIONS[tpl.complexity],
            "sql_task_type": tpl.task_type, "sql_task_type_description": TASK_DESCRIPTIONS[tpl.task_type],
            "sql_prompt": question, "sql_context": context, "sql": case.sql, "sql_explanation": case.explanation,
            "template": tpl.name,
        })
        if progress:
            progress(1)
    return out


def write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [("id", pa.int64())] + [(c, pa.string()) for c in GRETEL_COLUMNS[1:] + GRETEL_EXTRA]))
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=12)
    tmp.replace(path)


def card(train: list[dict], test: list[dict], seed: int, stats: Stats) -> str:
    def table(rows: list[dict], key: str) -> str:
        c_train = collections.Counter(r[key] for r in train)
        c_test = collections.Counter(r[key] for r in test)
        lines = [f"| {key} | train | test |", "|---|---:|---:|"]
        lines += [f"| {k} | {c_train[k]} | {c_test[k]} |" for k in sorted(set(c_train) | set(c_test))]
        return "\n".join(lines)

    rej = ", ".join(f"{k}: {v}" for k, v in stats.rejected.most_common()) or "none"
    return f"""# sqlgenie-sql: the bundled, execution-verified text-to-SQL dataset

Generated by `python -m pipeline generate-data` (pipeline/datagen/, seed {seed}); do not edit by hand.
Columns are exactly those of Gretel's `synthetic_text_to_sql`, so every loader and report treats both alike.

- {len(train)} train rows, {len(test)} test rows; {len({r['domain'] for r in train})} train domains,
  {len(TEMPLATES)} SQL templates (families) with 2-4 phrasings each, a quarter of the questions terse or sloppy,
  fresh random data per row.
- The test split is held out by domain and template family: its domains ({', '.join(HELD_OUT_DOMAINS)}) never
  appear in train, and the families {', '.join(HELD_OUT_FAMILIES)} are in test only (column `template`).
- Every row's `sql_context` creates AND fills every table of its domain (primary and foreign keys), in 60% of
  rows with one or two unrelated tables of another domain, in one naming style per row (snake_case, camelCase,
  PascalCase, tbl_ prefixes, abbreviations, "Quoted Spaces", UPPER): the gold SQL uses the styled names.
  One row in seven is a wide schema: every table of one or two more domains (6-9 tables, long prompts).
- Every row was verified on SQLite: queries return a non-empty result that does not change when the rows are
  inserted in reverse order; DML changes rows deterministically; DDL runs. Attempts: {stats.attempts},
  kept: {stats.kept}; rejected: {rej}.
- No (question, SQL) pair of the test split appears in the train split.
- SQL is SQLite-flavoured standard SQL (strftime for dates). License: Apache-2.0, like the project.

{table(train, 'sql_complexity')}

{table(train, 'sql_task_type')}

{table(train, 'domain')}
"""


def run(out_dir: Path, n_train: int, n_test: int, seed: int = 7, write_card: bool = True) -> dict:
    from tqdm import tqdm

    stats = Stats()
    import sys

    with tqdm(total=n_train + n_test, desc="generating verified rows", unit="row",
              mininterval=0.5 if sys.stderr.isatty() else 15) as bar:
        held_domains = [d for d in DOMAINS if d.key in HELD_OUT_DOMAINS]
        train_domains = [d for d in DOMAINS if d.key not in HELD_OUT_DOMAINS]
        train_templates = [t for t in TEMPLATES if t.name not in HELD_OUT_FAMILIES]
        test = generate(n_test, seed + 1, stats=stats, progress=bar.update, domains=held_domains) if n_test else []
        held = {(r["sql_prompt"], r["sql"]) for r in test}
        train = generate(n_train, seed, exclude=held, id_offset=1, stats=stats, progress=bar.update,
                         domains=train_domains, templates=train_templates)
    for r in test:
        r["id"] += n_train
    out_dir = Path(out_dir)
    write_parquet(train, out_dir / "train.parquet")
    if test:
        write_parquet(test, out_dir / "test.parquet")
    if write_card:
        (out_dir / "README.md").write_text(card(train, test, seed, stats), encoding="utf-8")
    return {"train": len(train), "test": len(test), "attempts": stats.attempts, "rejected": dict(stats.rejected),
            "out_dir": str(out_dir)}
