"""Check, format and transpile generated SQL against the user's schema (sqlglot), with honest, separate marks.

    from sql.validate import check
    r = check("select nme from users", schema_ddl="CREATE TABLE users (id INT, name TEXT);", dialect="postgres")
    r.parses, r.names_exist, r.read_only, r.ok, r.errors, r.warnings, r.formatted, r.transpiled

Three separate marks, never one vague "valid":
- parses: sqlglot parses it as a real statement. Its fallback `Command` parse (what it does with prose such as
  "create a list with the name of ...", or a lone keyword) does not count.
- names_exist: every table is in the schema (or a CTE) and every column resolves in its own scope: the
  SELECT's own FROM, CTEs and derived tables included (sqlglot's qualify machinery), so a column that exists
  only in a subquery's table is reported where it is used. None when no schema was given.
- read_only: a query (SELECT, set operation, WITH ...). DML (INSERT/UPDATE/DELETE) and DDL (CREATE/DROP/ALTER)
  are flagged as changing data, with a warning: the playground runs them only on a throwaway copy.
`ok` = all three. Errors name the unknown table or column with the closest real name and line/column.
Formatting is sqlglot's pretty printer in the source dialect; transpiling writes the same query for another
dialect (sqlite, postgres, mysql, duckdb, bigquery, snowflake, tsql, ...).
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

DIALECTS = ("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql", "spark", "trino", "oracle")
_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved(?:\. Line: (\d+), Col: (\d+))?")
_UNKNOWN_COL = re.compile(r"Unknown column: (\S+)")


@dataclass
class SqlCheck:
    sql: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    formatted: str = ""
    transpiled: str = ""
    tables: list[str] = field(default_factory=list)
    parses: bool = False
    names_exist: bool | None = None
    read_only: bool = False
    statement: str = ""                              # SELECT | INSERT | DELETE | DROP | ...
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=64)
def schema_columns(ddl: str, dialect: str = "sqlite") -> tuple[dict[str, set[str]], list[str]]:
    """{table: {columns}} (lower case) from CREATE TABLE / VIEW statements (others ignored); parse problems.
    Cached per (schema, dialect): questions about one schema come in a row (the parse is ~3 ms of an answer's
    client time). The result is shared: read it, never change it."""
    import sqlglot
    from sqlglot import exp

    tables: dict[str, set[str]] = {}
    try:
        statements = sqlglot.parse(ddl, read=dialect or None)
    except sqlglot.errors.ParseError as e:
        return {}, [f"schema: {_parse_error_text(e)}"]
    except sqlglot.errors.TokenError as e:
        return {}, [f"schema: {str(e).splitlines()[0]}"]
    for st in statements:
        if isinstance(st, exp.Create) and st.kind == "TABLE":
            target = st.this
            name = (target.this.name if isinstance(target, exp.Schema) else target.name).lower()
            cols = {c.name.lower() for c in st.find_all(exp.ColumnDef)}
            if isinstance(st.expression, exp.Query):  # CREATE TABLE ... AS SELECT
                cols |= {s.alias_or_name.lower() for s in st.expression.selects}
            tables[name] = cols
        elif isinstance(st, exp.Create) and st.kind == "VIEW":
            tables[st.this.name.lower()] = ({s.alias_or_name.lower() for s in st.expression.selects}
                                            if isinstance(st.expression, exp.Query) else set())
    return tables, []


def _parse_error_text(e) -> str:
    errs = getattr(e, "errors", None) or []
    if errs:
        first = errs[0]
        return f"line {first.get('line')}, column {first.get('col')}: {first.get('description')}"
    return str(e).splitlines()[0]


def _closest(name: str, options) -> str:
    m = difflib.get_close_matches(name.lower(), sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {m[0]}?)" if m else ""


def _statement(tree) -> tuple[str, bool]:
    """(statement keyword, is a read)."""
    from sqlglot import exp

    if isinstance(tree, exp.Query):
        return "SELECT", True
    name = {exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Create: "CREATE",
            exp.Drop: "DROP", exp.Alter: "ALTER", exp.Merge: "MERGE"}
    for cls, word in name.items():
        if isinstance(tree, cls):
            return word, False
    return type(tree).__name__.upper(), False


def _table_errors(tree, tables: dict[str, set[str]]) -> list[str]:
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = []
    for t in tree.find_all(exp.Table):
        name = t.name.lower()
        if name and name not in tables and name not in ctes:
            out.append(f"unknown table {t.name}{_closest(name, tables)} (the schema has {', '.join(sorted(tables))})")
    return list(dict.fromkeys(out))


def _column_errors(tree, tables: dict[str, set[str]], dialect: str, used: list[str]) -> list[str]:
    """Scope-aware: sqlglot's qualify resolves every column in its own SELECT's sources (tables, CTEs,
    derived tables); the first column it cannot resolve is reported with the closest real names. `used`: the
    names of the tables the query reads (the caller's walk of the tree, before qualify changes it)."""
    from sqlglot import exp
    from sqlglot.errors import OptimizeError
    from sqlglot.optimizer.qualify import qualify

    if not isinstance(tree, exp.Query):
        return _dml_column_errors(tree, tables)
    try:   # qualifies `tree` in place (the caller has formatted it already): no copy of the tree
        qualify(tree, schema=_mapping_schema(_tables_key(tables), dialect), dialect=dialect or None,
                validate_qualify_columns=True, quote_identifiers=False, identify=False)
        return []
    except OptimizeError as e:
        msg = str(e)
    except Exception as e:  # noqa: BLE001 - an odd shape sqlglot's optimizer cannot walk: do not guess
        return [f"the names could not be checked ({type(e).__name__})"]
    in_query = {n.lower() for n in used} & set(tables)
    nearby = set().union(*(tables[t] for t in in_query)) if in_query else set().union(*tables.values())
    m = _UNRESOLVED.search(msg) or _UNKNOWN_COL.search(msg)
    if not m:
        return [f"names: {msg.splitlines()[0]}"]
    col = m.group(1)
    where = f" (line {m.group(2)}, column {m.group(3)})" if m.lastindex and m.lastindex >= 3 and m.group(2) else ""
    owners = sorted(t for t, cols in tables.items() if col.lower() in cols)
    hint = (f": it is a column of {', '.join(owners)}, which this part of the query does not read" if owners
            else _closest(col, nearby))
    return [f"unknown column {col}{where}{hint}"]


def _tables_key(tables: dict[str, set[str]]) -> tuple:
    return tuple(sorted((t, tuple(sorted(cols))) for t, cols in tables.items()))


@functools.lru_cache(maxsize=64)
def _mapping_schema(key: tuple, dialect: str):
    """sqlglot's MappingSchema of a schema, built once per (schema, dialect): building it normalizes every name
    (~0.7 ms of an answer), and the questions about one schema come in a row. qualify only reads it."""
    from sqlglot.schema import MappingSchema

    return MappingSchema({t: {c: "TEXT" for c in cols} for t, cols in key}, dialect=dialect or None)


def _dml_column_errors(tree, tables: dict[str, set[str]]) -> list[str]:
    """INSERT/UPDATE/DELETE: columns must belong to one of the statement's tables."""
    from sqlglot import exp

    used = {t.name.lower() for t in tree.find_all(exp.Table)} & set(tables)
    cols = set().union(*(tables[t] for t in used)) if used else set()
    out = []
    for c in tree.find_all(exp.Column):
        if c.name and not isinstance(c.this, exp.Star) and c.name.lower() not in cols:
            out.append(f"unknown column {c.name}{_closest(c.name, cols)}")
    return list(dict.fromkeys(out))


def check(sql: str, schema_ddl: str = "", dialect: str = "sqlite", target: str | None = None,
          known_tables: dict[str, set[str]] | None = None) -> SqlCheck:
    """`known_tables`: the schema already parsed by schema_columns (callers that checked the schema first).
    A statement nested too deeply for sqlglot's recursive parser (a model looping on `- - - -` or `NOT NOT`)
    is invalid, said so, never an exception."""
    try:
        return _check(sql, schema_ddl, dialect, target, known_tables)
    except RecursionError:
        return SqlCheck((sql or "").strip(), False, [
            "nested too deeply to check (an operator or function repeated hundreds of times, as a model does "
            "when it loops): write the expression without the repetition"])


def _check(sql: str, schema_ddl: str, dialect: str, target: str | None,
           known_tables: dict[str, set[str]] | None) -> SqlCheck:
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
    if any(isinstance(t, exp.Command) for t in trees):
        return SqlCheck(sql, False, [f"does not parse as a SQL statement (it reads like prose or a bare command: "
                                     f"{sql[:60]!r})"])
    empty = [s for t in trees for s in t.find_all(exp.Select) if not s.expressions]
    if empty:
        return SqlCheck(sql, False, ["a SELECT with nothing to select (the answer stops after SELECT): name the "
                                     "columns or expressions to return"])
    kinds = [_statement(t) for t in trees]
    read_only = all(r for _, r in kinds)
    warnings = [] if read_only else [
        f"this {', '.join(k for k, r in kinds if not r)} statement changes data or the schema: it is never run on "
        "your database, only on a throwaway copy"]
    errors: list[str] = []
    names_exist = None
    tables: list[str] = []
    formatted = ";\n".join(t.sql(dialect=dialect or None, pretty=True) for t in trees) + ";"  # before the name
    if known_tables is not None or schema_ddl.strip():                                         # check qualifies
        known, problems = (known_tables, []) if known_tables is not None else schema_columns(schema_ddl, dialect)
        errors += problems
        name_errors: list[str] = []
        for tree in trees:
            used = [t.name for t in tree.find_all(exp.Table)]     # read before the column check qualifies the tree
            tables += used
            bad_tables = _table_errors(tree, known)
            name_errors += bad_tables or _column_errors(tree, known, dialect, used)
        names_exist = not name_errors
        errors += name_errors
    transpiled = ""
    if target and target != dialect:
        try:
            transpiled = ";\n".join(sqlglot.transpile(sql, read=dialect or None, write=target, pretty=True)) + ";"
        except sqlglot.errors.SqlglotError as e:
            errors.append(f"cannot write it for {target}: {str(e).splitlines()[0]}")
    ok = not errors and read_only
    return SqlCheck(sql, ok, errors, formatted, transpiled or formatted, sorted(set(tables)), True, names_exist,
                    read_only, ", ".join(k for k, _ in kinds), warnings)
