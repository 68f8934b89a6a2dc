"""Pull the SQL out of a raw model completion; one implementation shared by evaluation and serving.

Handles code fences (```sql ... ```), a leading "SQL:" / "Answer:" label, trailing prose after the
statement, chat end-of-turn tokens and several statements (the first complete one is kept, unless the
first is only a comment). It never takes prose for SQL: fenced code, or an answer that starts with an
upper-case statement keyword, is SQL (returned even when broken, so the checker can say what is wrong);
anything else must parse as a real statement, and a keyword further in counts only
where a statement could begin (start of a line, after a `label:`) or in upper case, and only if what follows
parses as a real statement ("The order with the highest total ..." is prose, not `with the highest ...`).

    from sql.extract import extract_sql
    extract_sql("Sure!\n```sql\nSELECT 1;\n```\nThis selects one.")   # -> "SELECT 1;"
"""
from __future__ import annotations

import re

from sql.statements import split_statements

_FENCE = re.compile(r"```[ \t]*(?:sql|sqlite|postgresql|mysql)?[ \t]*\n?(.*?)(?:```|\Z)", re.S | re.I)
_LABEL = re.compile(r"^\s*(?:sql|sql query|query|answer)\s*:\s*", re.I)
_START = re.compile(r"\b(WITH|SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|REPLACE|PRAGMA|EXPLAIN)\b", re.I)
_SPECIAL = re.compile(r"<\|[a-z_]+\|>|</s>")


def extract_sql(text: str) -> str:
    """The first SQL statement in `text`, ending with ';' ('' when there is none)."""
    text = _sql_segment(text or "")
    m = _FENCE.search(text)
    fenced = m is not None
    body = _LABEL.sub("", (m.group(1) if m else text).strip())
    for start in _START.finditer(body):
        at = start.start()
        before = body[:at].rstrip(" \t")
        line_start = at == 0 or before.endswith(("\n", ":"))
        if not (line_start or start.group(1).isupper()):
            continue
        stmt = _first_statement(body[at:])
        if not stmt:
            continue
        if fenced or (at == 0 and start.group(1).isupper()) or _parses(stmt):
            return stmt
    return ""


def _first_statement(body: str) -> str:
    for stmt in split_statements(body):
        stmt = _trim_prose(stmt)
        if stmt and stmt != ";":
            return stmt
    return ""


def _parses(sql: str) -> bool:
    """sqlglot parses it as a real statement (not its fallback Command parse of prose)."""
    import sqlglot
    from sqlglot import exp

    try:
        trees = [t for t in sqlglot.parse(sql, read="sqlite") if t is not None]
    except (sqlglot.errors.SqlglotError, ValueError, RecursionError):
        return False
    return bool(trees) and not any(isinstance(t, exp.Command) for t in trees)


def _sql_segment(text: str) -> str:
    """The part of `text` between special tokens that holds the SQL.

    A chat end-of-turn token after the query ends it ("SELECT 1<|im_end|>junk"), but a special token
    before it (a header the model echoed, "<|...|>" in prose) must not hide the query behind it: the
    first piece with a code fence wins, else the first piece with a statement keyword, else the first.
    """
    pieces = _SPECIAL.split(text)
    for pattern in (_FENCE, _START):
        for piece in pieces:
            if pattern.search(piece):
                return piece
    return pieces[0]


def _trim_prose(stmt: str) -> str:
    """Drop prose glued after an unterminated statement: cut at a blank line."""
    stmt = re.split(r"\n\s*\n", stmt, maxsplit=1)[0].strip()
    return stmt if stmt.endswith(";") else stmt + ";"
