"""Validate, format and transpile generated SQL against the user's schema (sqlglot).

    from sql.validate import check
    r = check("select nme from users", schema_ddl="CREATE TABLE users (id INT, name TEXT);", dialect="postgres")
    r.ok, r.errors, r.formatted, r.transpiled      # errors name the unknown column and its line/column

Parse errors carry line and column. Tables and columns the query references are checked against the
CREATE TABLE statements (CTE names, aliases and derived-table columns are understood; a column that no
table has is reported with the closest real name). Formatting is sqlglot's pretty printer in the source
dialect; transpiling writes the same query for another dialect (sqlite, postgres, mysql, duckdb,
bigquery, snowflake, tsql, ...).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

DIALECTS = ("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql", "spark", "trino", "oracle")


@dataclass
class SqlCheck:
    sql: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    formatted: str = ""
    transpiled: str = ""
    tables: list[str] = field(default_factory=list)


def schema_columns(ddl: str, dialect: str = "sqlite") -> tuple[dict[str, set[str]], list[str]]:
    """{table: {columns}} from CREATE TABLE statements (other statements ignored); parse problems listed."""
    import sqlglot
    from sqlglot import exp

    tables: dict[str, set[str]] = {}
    problems: list[str] = []
    try:
        statements = sqlglot.parse(ddl, read=dialect or None)
    except sqlglot.errors.ParseError as e:
        return {}, [f"schema: {_parse_error_text(e)}"]
    for st in statements:
        if isinstance(st, exp.Create) and st.kind == "TABLE":
            target = st.this
            name = (target.this.name if isinstance(target, exp.Schema) else target.name).lower()
            cols = {c.name.lower() for c in st.find_all(exp.ColumnDef)}
            if isinstance(st.expression, exp.Query):  # CREATE TABLE ... AS SELECT
                cols |= {s.alias_or_name.lower() for s in st.expression.selects}
            tables[name] = cols
        elif isinstance(st, exp.Create) and st.kind == "VIEW":
            tables[st.this.name.lower()] = {s.alias_or_name.lower() for s in st.expression.selects} if isinstance(st.expression, exp.Query) else set()
    return tables, problems


def _parse_error_text(e) -> str:
    errs = getattr(e, "errors", None) or []
    if errs:
        first = errs[0]
        return f"line {first.get('line')}, column {first.get('col')}: {first.get('description')}"
    return str(e).splitlines()[0]


def _closest(name: str, options) -> str:
    m = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {m[0]}?)" if m else ""


def check_references(tree, tables: dict[str, set[str]]) -> list[str]:
    from sqlglot import exp

    errors: list[str] = []
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    derived: set[str] = set(ctes)
    for sub in tree.find_all(exp.Subquery):
        if sub.alias:
            derived.add(sub.alias.lower())
    aliases: dict[str, str] = {}
    used: set[str] = set()
    for t in tree.find_all(exp.Table):
        name = t.name.lower()
        if not name:
            continue
        if name not in tables and name not in derived:
            errors.append(f"unknown table {t.name}{_closest(name, tables)}")
            continue
        used.add(name)
        aliases[(t.alias or t.name).lower()] = name
    output_aliases = {s.alias.lower() for s in tree.find_all(exp.Alias) if s.alias}
    all_cols = set().union(*tables.values()) if tables else set()
    for c in tree.find_all(exp.Column):
        col = c.name.lower()
        if not col or col == "*" or isinstance(c.this, exp.Star):
            continue
        qual = c.table.lower()
        if qual:
            base = aliases.get(qual)
            if base is None:
                if qual not in derived and qual not in tables:
                    errors.append(f"unknown table or alias {c.table} in {c.sql()}")
                continue
            if base not in tables:  # a CTE or derived table: its columns come from its own SELECT
                continue
            if col not in tables[base]:
                errors.append(f"unknown column {c.sql()}: table {base} has {', '.join(sorted(tables[base]))}"
                              f"{_closest(col, tables[base])}")
            continue
        in_scope = set().union(*(tables.get(u, set()) for u in used)) if used else all_cols
        if col not in in_scope and col not in output_aliases and not derived:
            errors.append(f"unknown column {c.name}{_closest(col, in_scope or all_cols)}")
    return list(dict.fromkeys(errors))


def check(sql: str, schema_ddl: str = "", dialect: str = "sqlite", target: str | None = None,
          known_tables: dict[str, set[str]] | None = None) -> SqlCheck:
    """`known_tables`: the schema already parsed by schema_columns (callers that checked the schema first)."""
    import sqlglot
    from sqlglot import exp

    sql = (sql or "").strip()
    if not sql:
        return SqlCheck(sql, False, ["no SQL in the model's answer"])
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect or None) if t is not None]
    except sqlglot.errors.ParseError as e:
        return SqlCheck(sql, False, [f"does not parse: {_parse_error_text(e)}"])
    except sqlglot.errors.TokenError as e:
        return SqlCheck(sql, False, [f"does not parse: {str(e).splitlines()[0]}"])
    if not trees:
        return SqlCheck(sql, False, ["no SQL statement"])
    errors: list[str] = []
    tables: list[str] = []
    if known_tables is not None or schema_ddl.strip():
        known, problems = (known_tables, []) if known_tables is not None else schema_columns(schema_ddl, dialect)
        errors += problems
        for tree in trees:
            errors += check_references(tree, known)
            tables += [t.name for t in tree.find_all(exp.Table)]
    formatted = ";\n".join(t.sql(dialect=dialect or None, pretty=True) for t in trees) + ";"
    transpiled = ""
    if target and target != dialect:
        try:
            transpiled = ";\n".join(sqlglot.transpile(sql, read=dialect or None, write=target, pretty=True)) + ";"
        except sqlglot.errors.SqlglotError as e:
            errors.append(f"cannot write it for {target}: {str(e).splitlines()[0]}")
    return SqlCheck(sql, not errors, errors, formatted, transpiled or formatted, sorted(set(tables)))
