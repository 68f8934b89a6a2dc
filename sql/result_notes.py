"""What looks suspicious about an answer, beside the checks of its text: notes a user reads before trusting it.

The checks (sql/validate.py: syntax, names, read-only) say the SQL is well-formed and safe to run, never that
it answers the question. These notes say, in words, what makes an answer that passes them still doubtful:

    from sql.result_notes import result_notes
    result_notes("SELECT name FROM t WHERE lang = 'english'", "sqlite",
                 sample_rows="INSERT INTO t VALUES ('Ann', 'English');")
    # ["'english' is not in the sample rows; 'English' is (letter case)"]

- a constant: the query reads no table (`SELECT 1.00`), so its "result" says nothing about the data;
- a compared literal absent from the sample rows (`col = 'x'`, `col IN ('x', 'y')`, `LIKE 'x'` without
  wildcards): named, with the spelling the rows do have when only the letter case differs. Only with sample
  rows given, and only for text literals: a number or a date range is often legitimately absent.
"""
from __future__ import annotations

import re


def _literals_compared(tree) -> list[str]:
    """Text literals the query compares a column with exactly (=, <>, IN, LIKE without wildcards)."""
    from sqlglot import exp

    out: list[str] = []
    for node in tree.find_all(exp.EQ, exp.NEQ, exp.In, exp.Like):
        if isinstance(node, exp.In):
            sides, values = [node.this], node.expressions
        else:
            sides = values = [node.left, node.right]
        if not any(isinstance(s, exp.Column) for s in sides):     # lower(col) = 'x' folds case on purpose
            continue
        for v in values:
            if not (isinstance(v, exp.Literal) and v.is_string and v.this):
                continue
            if isinstance(node, exp.Like) and ("%" in v.this or "_" in v.this):
                continue
            if v.this not in out:
                out.append(v.this)
    return out


def _quoted_values(sample_rows: str) -> list[str]:
    """The text values of INSERT statements ('it''s' unescaped)."""
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", sample_rows or "")]


def result_notes(sql: str, dialect: str, sample_rows: str = "") -> list[str]:
    """Notes on `sql` (see the module docstring); [] where there is nothing to say or it does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, RecursionError, ValueError):
        return []
    notes: list[str] = []
    if isinstance(tree, exp.Query) and not list(tree.find_all(exp.Table)):
        notes.append("a constant: the query reads no table, so it says nothing about the data")
    if isinstance(tree, exp.Expression) and sample_rows.strip():
        values = _quoted_values(sample_rows)
        exact = set(values)
        folded: dict[str, str] = {}
        for v in values:
            folded.setdefault(v.casefold(), v)
        for lit in _literals_compared(tree):
            if lit in exact:
                continue
            if lit.casefold() in folded:
                notes.append(f"'{lit}' is not in the sample rows; '{folded[lit.casefold()]}' is (letter case)")
            else:
                notes.append(f"'{lit}' appears nowhere in the sample rows")
    return notes
