"""Repair a generated query whose columns the schema places elsewhere, when the schema leaves one reading.

    from sql.repair import repair, repair_all
    fixed = repair("SELECT v.stars FROM orgs g JOIN repos e ON e.org_id = g.id JOIN members v ON ...", ddl)
    fixed.sql, fixed.changes        # "SELECT e.stars ...", ["v.stars -> e.stars"]
    sqls, moves = repair_all(candidates, ddl)        # each candidate, the schema read once; {sql: its moves}

A small model often names the right column and then reads it through the wrong place. SQLite says
"no such column"; two readings are mechanical, and both are done per SELECT scope (sqlglot's scope machinery:
CTEs, derived tables and subqueries each on their own):

1. requalify: a qualified column that its table does not have is moved to the one other table of the same FROM
   that has a column of that name (`v.stars -> e.stars`); before that, a JOIN whose ON names a column its table
   lacks, or equates a column with itself, gets the one foreign key between its table and the tables before it;
2. join: a column that no table of its FROM (nor of an enclosing query) has brings in the table that has it and is
   nearest by foreign keys, through the one shortest key path (sql/joins.py) from the tables already there:
   `JOIN sites AS s ON s.site_id = telescopes.site_id`, and the column is read through it. The other columns of
   that scope are qualified first, so the new table cannot make them ambiguous.

When no table has the column, or two are equally near, or two join paths are equally short, or the result would not
pass the checker, nothing is changed: the query stays wrong rather than guessed at. Columns of derived tables
or CTEs are left alone. The answer lists every change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from sql.joins import ForeignKeys
from sql.validate import check, schema_columns

_PARSE_ERRORS = (sqlglot.errors.ParseError, sqlglot.errors.TokenError, sqlglot.errors.OptimizeError, ValueError)


@dataclass
class Repaired:
    sql: str
    changes: list[str] = field(default_factory=list)


def _tables_in(scope: Scope, tables: dict[str, set[str]]) -> dict[str, set[str]]:
    """{alias or name: the table's columns} for the schema tables read directly by this scope."""
    return {name: tables[src.name.lower()] for name, src in scope.sources.items()
            if isinstance(src, exp.Table) and src.name.lower() in tables}


def _own_columns(scope: Scope) -> list[exp.Column]:
    """The scope's columns that sit in its own SELECT (sqlglot also lists a nested subquery's output columns)."""
    return [c for c in scope.columns if c.find_ancestor(exp.Select) is scope.expression]


def _requalify(scope: Scope, tables: dict[str, set[str]]) -> list[str]:
    owned = _tables_in(scope, tables)
    undefined = set()
    if len(owned) == len(scope.sources):
        undefined = {c.table for c in _own_columns(scope) if c.table and c.table not in scope.sources}
        undefined -= _outer_names(scope, tables)[0]
    changes = []
    for col in _own_columns(scope):
        q = col.table
        if not q or (q not in owned and q not in undefined) or (q in owned and col.name.lower() in owned[q]):
            continue
        holders = [name for name, cols in owned.items() if col.name.lower() in cols]
        if len(holders) == 1:
            changes.append(f"{q}.{col.name} -> {holders[0]}.{col.name}")
            col.set("table", exp.to_identifier(holders[0]))
    return changes


def _outer_names(scope: Scope, tables: dict[str, set[str]]) -> tuple[set[str], set[str]]:
    """Aliases and columns visible from enclosing queries (a correlated reference is not ours to move)."""
    aliases, columns = set(), set()
    parent = scope.parent
    while parent is not None:
        aliases |= set(parent.sources)
        for cols in _tables_in(parent, tables).values():
            columns |= cols
        parent = parent.parent
    return aliases, columns


def _missing(scope: Scope, tables: dict[str, set[str]]) -> list[exp.Column] | None:
    """Columns this scope reads that none of its tables has; None when the scope is not ours to change."""
    select = scope.expression
    if not isinstance(select, exp.Select) or not (select.args.get("from_") or select.args.get("from")):
        return None
    owned = _tables_in(scope, tables)
    if len(owned) != len(scope.sources):
        return None                  # a derived table or CTE: its columns are not the schema's to check
    outer_aliases, outer_columns = _outer_names(scope, tables)
    outputs = {s.alias.lower() for s in select.expressions if s.alias}
    missing = []
    for col in _own_columns(scope):
        name, q = col.name.lower(), col.table
        if q in owned:
            if not any(name in cols for cols in owned.values()) and name not in outer_columns:
                missing.append(col)
        elif q:
            if q not in outer_aliases:
                missing.append(col)  # an alias nobody defined
        elif not any(name in cols for cols in owned.values()) and name not in outputs:
            if name not in outer_columns:
                missing.append(col)
    return missing


def _join(scope: Scope, missing: list[exp.Column], tables: dict[str, set[str]], keys: ForeignKeys) -> list[str]:
    """Bring in the nearest table each missing column can come from, through the one shortest key path."""
    select: exp.Select = scope.expression
    owned = _tables_in(scope, tables)
    by_table = {scope.sources[a].name.lower(): a for a in owned}       # table -> alias already used for it
    used = {a.lower() for a in owned}
    plan = []
    for col in missing:
        holders = [t for t, cols in tables.items() if col.name.lower() in cols and t not in by_table]
        paths = [(t, keys.path(set(by_table), t)) for t in holders]
        paths = [(t, p) for t, p in paths if p]
        nearest = min((len(p) for _, p in paths), default=0)
        paths = [(t, p) for t, p in paths if len(p) == nearest]
        if len(paths) != 1:
            return []                # nowhere, or more than one table could be meant: no guess
        plan.append((col, *paths[0]))
    # qualify what already resolves, so a joined table cannot make it ambiguous
    outputs = {s.alias.lower() for s in select.expressions if s.alias}
    for col in _own_columns(scope):
        if not col.table and col not in missing and col.name.lower() not in outputs:
            holders = [a for a, cols in owned.items() if col.name.lower() in cols]
            if len(holders) == 1:
                col.set("table", exp.to_identifier(holders[0]))
    changes = []
    for col, target, path in plan:
        for a, col_a, b, col_b in path:
            if b in by_table:
                continue
            name = keys.spelling.get(b, b)
            wanted = col.table if (b == target and col.table and col.table.lower() not in used) else name
            alias = wanted if wanted.lower() not in used else next(
                f"{b}_{i}" for i in range(2, 99) if f"{b}_{i}" not in used)
            used.add(alias.lower())
            by_table[b] = alias
            on = exp.EQ(this=exp.column(col_b, table=alias), expression=exp.column(col_a, table=by_table[a]))
            table = exp.Table(this=exp.to_identifier(name))
            if alias != name:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            select.join(table, on=on, copy=False)
            changes.append(f"{exp.Join(this=table, on=on).sql()} (for {col.name})")
        before = col.sql()
        col.set("table", exp.to_identifier(by_table[target]))
        if before != col.sql():
            changes.append(f"{before} -> {col.sql()}")
    return list(dict.fromkeys(changes))


def _broken_on(on: exp.Expression, aliases: dict[str, set[str]]) -> bool:
    """An ON that names a column its alias's table lacks, or only equates a column with itself."""
    cols = list(on.find_all(exp.Column))
    if any(c.table in aliases and c.name.lower() not in aliases[c.table] for c in cols):
        return True
    return isinstance(on, exp.EQ) and len(cols) == 2 and cols[0].sql().lower() == cols[1].sql().lower()


def _fix_on(scope: Scope, tables: dict[str, set[str]], keys: ForeignKeys) -> list[str]:
    """Each JOIN whose ON is broken gets the one foreign key between its table and the tables before it."""
    select = scope.expression
    joins = select.args.get("joins") or []
    owned = _tables_in(scope, tables)
    if not isinstance(select, exp.Select) or not joins or len(owned) != len(scope.sources):
        return []
    first = select.args.get("from_") or select.args.get("from")
    order = [first.this] + [j.this for j in joins]
    if not all(isinstance(t, exp.Table) for t in order):
        return []
    changes = []
    for i, join in enumerate(joins, 1):
        on = join.args.get("on")
        if on is None or not _broken_on(on, owned):
            continue
        mine, before = order[i], order[:i]
        links = [(e, t) for e in keys.edges.get(mine.name.lower(), []) for t in before if t.name.lower() == e[2]]
        if len(links) != 1:
            continue                 # no key, or more than one way: no guess
        (_, col_a, _, col_b), other = links[0]
        fixed = exp.EQ(this=exp.column(col_a, table=mine.alias_or_name),
                       expression=exp.column(col_b, table=other.alias_or_name))
        changes.append(f"ON {on.sql()} -> ON {fixed.sql()}")
        join.set("on", fixed)
    return changes


def repair(sql: str, schema: str, dialect: str = "sqlite", tables: dict[str, set[str]] | None = None,
           keys: ForeignKeys | None = None, joins: bool = True) -> Repaired:
    """`sql` with its columns read where the schema says they are (see the module); unchanged when unsure.
    `joins=False`: only the moves within a FROM (used when a changed join would not pass the checker)."""
    try:
        return _repair(sql, schema, dialect, tables, keys, joins)
    except RecursionError:   # nested too deeply for sqlglot (a looping model): left as it is, the checker says why
        return Repaired(sql)


def _repair(sql: str, schema: str, dialect: str, tables: dict[str, set[str]] | None, keys: ForeignKeys | None,
            joins: bool) -> Repaired:
    if not sql or not sql.strip():
        return Repaired(sql)
    if tables is None:
        tables, _ = schema_columns(schema, dialect)
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
        scopes = traverse_scope(tree)
    except _PARSE_ERRORS:
        return Repaired(sql)
    keys = (keys or ForeignKeys.of(schema)) if joins else None
    relinked = [c for scope in scopes for c in _fix_on(scope, tables, keys)] if joins else []  # joins first
    if relinked:
        scopes = traverse_scope(tree)           # the scopes still list the columns of the replaced ONs
    moved = [c for scope in scopes for c in _requalify(scope, tables)]
    added = []
    for scope in scopes if joins else []:
        missing = _missing(scope, tables)
        if missing:
            added += _join(scope, missing, tables, keys)
    if not (relinked or moved or added):
        return Repaired(sql)
    end = ";" if sql.rstrip().endswith(";") else ""
    text = tree.sql(dialect=dialect or None) + end
    if (relinked or added) and not check(text, schema, dialect, known_tables=tables).ok:
        return repair(sql, schema, dialect, tables, joins=False)
    return Repaired(text, relinked + moved + added)


def repair_all(sqls: list[str], schema: str, dialect: str = "sqlite",
               tables: dict[str, set[str]] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Every query repaired with the schema read once: (the queries, {repaired query: its changes})."""
    if tables is None:
        tables, _ = schema_columns(schema, dialect)
    keys = ForeignKeys.of(schema)
    fixed = [repair(q, schema, dialect, tables, keys) for q in sqls]
    moves: dict[str, list[str]] = {}
    for f in fixed:
        moves.setdefault(f.sql, f.changes)   # the first candidate that gave this query says how
    return [f.sql for f in fixed], moves
