"""Split SQL scripts into statements (quotes and comments respected) and a Gretel context into DDL + rows.

    from sql.statements import split_statements, split_context
    split_statements("SELECT ';'; SELECT 2")      # -> ["SELECT ';';", "SELECT 2;"]
    split_context(sql_context)                     # -> (CREATE ... statements, INSERT ... statements)
"""
from __future__ import annotations

import re

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?(?:\*/|$)|;", re.S)


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level semicolons, respecting quotes; comments are dropped."""
    if "--" not in sql and "/*" not in sql and '"' not in sql and "`" not in sql:
        return _split_single_quoted(sql)
    out, buf, pos = [], [], 0
    for m in _TOKENS.finditer(sql):
        tok = m.group()
        if tok == ";":
            buf.append(sql[pos:m.start()])
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt + ";")
            buf = []
        elif tok.startswith("--") or tok.startswith("/*"):
            buf.append(sql[pos:m.start()])
        else:
            buf.append(sql[pos:m.end()])
        pos = m.end()
    tail = ("".join(buf) + sql[pos:]).strip()
    if tail:
        out.append(tail + ";")
    return out


def _split_single_quoted(sql: str) -> list[str]:
    """Fast path for scripts whose only quoting is '...': a ';' is inside a literal iff the quote count
    before it is odd (doubled quotes keep the parity), so str.split + parity merging is exact."""
    out, cur, odd = [], "", False
    for piece in sql.split(";"):
        cur = f"{cur};{piece}" if odd else piece
        odd = cur.count("'") % 2 == 1
        if not odd:
            stmt = cur.strip()
            if stmt:
                out.append(stmt + ";")
            cur = ""
    if cur.strip():
        out.append(cur.strip() + ";")
    return out


def split_context(context: str) -> tuple[str, str]:
    """(schema DDL, sample-data statements) of a Gretel sql_context."""
    schema, data = [], []
    for stmt in split_statements(context):
        head = stmt.lstrip("( \n\t").split(None, 1)[0].upper() if stmt.strip() else ""
        (data if head in ("INSERT", "UPDATE", "DELETE", "REPLACE") else schema).append(stmt)
    return "\n".join(schema), "\n".join(data)
