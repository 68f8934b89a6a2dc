"""Repair a generated query whose column carries the wrong table qualifier, when the schema says which is right.

    from sql.repair import requalify
    fixed = requalify("SELECT v.stars FROM orgs g JOIN repos e ON e.org_id = g.id JOIN members v ON ...", ddl)
    fixed.sql, fixed.changes        # "SELECT e.stars ...", ["v.stars -> e.stars"]
    sqls, moves = requalify_all(candidates, ddl)     # each candidate, the schema read once; {sql: its moves}

A small model often joins the right tables and then reads a column through the wrong alias (`v.stars` where
`stars` belongs to the table aliased `e`). SQLite then says "no such column". In each SELECT scope
(sqlglot's scope machinery: CTEs, derived tables and subqueries each on their own), a qualified column that its
table does not have is moved to the one other table of the same FROM that has a column of that name; when no
table or more than one has it, nothing is changed (the query stays wrong rather than guessed at). Unqualified
columns and columns of derived tables or CTEs are left alone. The answer says what was changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from sql.validate import schema_columns


@dataclass
class Repaired:
    sql: str
    changes: list[str] = field(default_factory=list)


def requalify(sql: str, schema: str, dialect: str = "sqlite", tables: dict[str, set[str]] | None = None) -> Repaired:
    """`sql` with wrongly qualified columns moved to the one table in scope that has them (see the module)."""
    if not sql or not sql.strip():
        return Repaired(sql)
    if tables is None:
        tables, _ = schema_columns(schema, dialect)
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
        scopes = traverse_scope(tree)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, sqlglot.errors.OptimizeError, ValueError):
        return Repaired(sql)
    changes = []
    for scope in scopes:
        owned = {name: tables.get(src.name.lower()) for name, src in scope.sources.items()
                 if isinstance(src, exp.Table) and src.name.lower() in tables}
        for col in scope.columns:
            q = col.table
            if not q or q not in owned or col.name.lower() in owned[q]:
                continue
            holders = [name for name, cols in owned.items() if col.name.lower() in cols]
            if len(holders) == 1:
                changes.append(f"{q}.{col.name} -> {holders[0]}.{col.name}")
                col.set("table", exp.to_identifier(holders[0]))
    if not changes:
        return Repaired(sql)
    text = tree.sql(dialect=dialect or None)
    return Repaired(text + (";" if sql.rstrip().endswith(";") else ""), changes)


def requalify_all(sqls: list[str], schema: str, dialect: str = "sqlite",
                  tables: dict[str, set[str]] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Every query repaired with the schema read once: (the queries, {repaired query: its moves})."""
    if tables is None:
        tables, _ = schema_columns(schema, dialect)
    fixed = [requalify(q, schema, dialect, tables) for q in sqls]
    moves: dict[str, list[str]] = {}
    for f in fixed:
        moves.setdefault(f.sql, f.changes)   # the first candidate that gave this query says how
    return [f.sql for f in fixed], moves
