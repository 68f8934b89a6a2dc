"""Pull the SQL out of a raw model completion; one implementation shared by evaluation and serving.

Handles code fences (```sql ... ```), a leading "SQL:" / "Answer:" label, trailing prose after the
statement, chat end-of-turn tokens and several statements (the first complete one is kept, unless the
first is only a comment).

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
    body = m.group(1) if m else text
    body = _LABEL.sub("", body.strip())
    start = _START.search(body)
    if not start:
        return ""
    body = body[start.start():]
    for stmt in split_statements(body):
        stmt = _trim_prose(stmt)
        if stmt and stmt != ";":
            return stmt
    return ""


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
