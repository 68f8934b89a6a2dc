"""Why a wrong answer is wrong: a row of an evaluation sorted into one of the error kinds below by comparing the
predicted query with the gold one (sqlglot, SQLite dialect). `sqlgenie evaluate` stores each row's kind
(`error_kind` in rows.jsonl) and their counts (`error_kinds` in metrics.json); `python -m pipeline compare` puts two
evaluations' counts side by side; bench/error_taxonomy.py makes the table for stored rows.

Kinds (MEANING below says each in words; the dashboard's Evaluations page shows it with the row): the first
that fits is a row's kind, and every kind that fits is counted too, in `any` (`literal_case`: only the letter
case of a literal differs).
"""
from __future__ import annotations

from collections import Counter

import sqlglot
from sqlglot import exp

KINDS = ("no_sql", "unknown_column", "unknown_table", "other_error", "wrong_table", "wrong_join", "unasked_construct",
         "wrong_literal", "wrong_aggregate", "wrong_column", "other_mismatch")
MEANING = {
    "no_sql": "the answer does not parse as SQL (or is refused as not a query)",
    "unknown_column": "it parses but names a column the schema lacks (no such column)",
    "unknown_table": "it parses but names a table the schema lacks (no such table)",
    "other_error": "it does not run for another reason (ambiguous name, wrong arity, the sandbox's caps)",
    "wrong_table": "it runs, but reads other tables than the gold (a one-table question answered through a join, "
                   "the wrong pair joined, a table missing)",
    "wrong_join": "the same tables, joined on other columns",
    "unasked_construct": "a CASE, window function, set operation or subquery the gold does not have",
    "wrong_literal": "other literal values (or only their letter case differs)",
    "wrong_aggregate": "other aggregate functions, or grouped by other columns",
    "wrong_column": "other columns selected, filtered or sorted on",
    "other_mismatch": "none of these: order, limit, distinct, comparison operators, ...",
}
CONSTRUCTS = {"CASE": exp.Case, "window": exp.Window, "UNION": exp.Union, "INTERSECT": exp.Intersect,
              "EXCEPT": exp.Except}


def _parse(sql: str) -> exp.Expression | None:
    try:
        tree = sqlglot.parse_one(sql or "", read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError, RecursionError):
        return None      # RecursionError: nested too deeply for sqlglot (a looping model's answer)
    return tree if isinstance(tree, (exp.Query,)) else None


def features(tree: exp.Expression) -> dict:
    """What the comparison looks at: tables, join pairs (the two key columns' names), constructs, literals,
    aggregates, groups, columns (a join's keys left out: those are wrong_join's)."""
    joins, in_joins = set(), set()
    for j in tree.find_all(exp.Join):
        on = j.args.get("on")
        if not on:
            continue
        in_joins.update(id(c) for c in on.find_all(exp.Column))
        for eq in on.find_all(exp.EQ):
            cols = [c for c in (eq.this, eq.expression) if isinstance(c, exp.Column)]
            if len(cols) == 2:
                joins.add(frozenset(c.name.lower() for c in cols))
    subqueries = sum(1 for s in tree.find_all(exp.Select)) - 1
    constructs = {name for name, kind in CONSTRUCTS.items() if tree.find(kind)}
    if subqueries > 0:
        constructs.add("subquery")
    literals = Counter(str(lit.this) for lit in tree.find_all(exp.Literal))
    aggregates = Counter(type(a).__name__ for a in tree.find_all(exp.AggFunc))
    groups = {c.name.lower() for g in tree.find_all(exp.Group) for c in g.find_all(exp.Column)}
    columns = {c.name.lower() for c in tree.find_all(exp.Column) if id(c) not in in_joins}
    return {"tables": {t.name.lower() for t in tree.find_all(exp.Table)}, "joins": joins, "constructs": constructs, "literals": literals,
            "aggregates": aggregates, "groups": groups, "columns": columns}


def kinds_of(row: dict) -> list[str]:
    """Every kind that fits a wrong row, in KINDS order (the first is its kind); [] for a right one."""
    if row.get("status") in ("match", "unscorable"):
        return []
    pred, gold = _parse(row.get("pred", "")), _parse(row.get("gold", ""))
    if pred is None and row.get("valid", True) and row.get("runs"):
        return ["other_mismatch"]        # SQLite ran it, sqlglot cannot read it (too deep): nothing to compare
    if pred is None or not row.get("valid", True):
        return ["no_sql"]
    if not row.get("runs"):
        err = (row.get("error") or "").lower()
        if "no such column" in err:
            return ["unknown_column"]
        if "no such table" in err:
            return ["unknown_table"]
        return ["other_error"]
    if gold is None:
        return ["other_mismatch"]
    p, g = features(pred), features(gold)
    out = []
    if p["tables"] != g["tables"]:
        out.append("wrong_table")
    elif p["joins"] != g["joins"]:
        out.append("wrong_join")
    if p["constructs"] - g["constructs"]:
        out.append("unasked_construct")
    if p["literals"] != g["literals"]:
        out.append("wrong_literal")
        lower = lambda c: Counter({k.lower(): v for k, v in c.items()})  # noqa: E731
        if lower(p["literals"]) == lower(g["literals"]):
            out.append("literal_case")
    if p["aggregates"] != g["aggregates"] or p["groups"] != g["groups"]:
        out.append("wrong_aggregate")
    if p["columns"] != g["columns"]:
        out.append("wrong_column")
    return out or ["other_mismatch"]


def taxonomy(rows: list[dict], kinds: list[list[str]] | None = None) -> dict:
    """Counts over an evaluation's rows: `kind` (each wrong row's first kind), `any` (every kind that fits);
    `kinds`: each row's kinds_of where the caller has them already."""
    first, every = Counter(), Counter()
    for ks in kinds if kinds is not None else map(kinds_of, rows):
        if ks:
            first[ks[0]] += 1
            every.update(ks)
    right = sum(1 for r in rows if r.get("status") == "match")
    return {"rows": len(rows), "right": right, "wrong": sum(first.values()), "kind": dict(first), "any": dict(every)}


def table(results: dict[str, dict]) -> str:
    """Markdown, one column per evaluation: each kind's count and its share of the wrong rows."""
    names = list(results)
    head = "| kind (first that fits) | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    lines = []
    for k in KINDS:
        cells = []
        for n in names:
            r = results[n]
            c = r["kind"].get(k, 0)
            cells.append(f"{c} ({c / max(1, r['wrong']):.0%})")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("| **right** | " + " | ".join(f"{results[n]['right']} of {results[n]['rows']}" for n in names) + " |")
    lines.append("| literal case only (any) | " + " | ".join(str(results[n]["any"].get("literal_case", 0))
                                                          for n in names) + " |")
    return head + "\n".join(lines)
