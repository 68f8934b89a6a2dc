"""Query results made comparable: the one definition of "the same answer" (evaluation and voting).

    from sql.results import result_rows, same_result, result_key
    same_result(gold_sql, got_rows, want_rows)     # lists when the gold has a top-level ORDER BY, else multisets
"""
from __future__ import annotations

import math
import re
from collections import Counter

_TOP_ORDER = re.compile(r"\border\s+by\b", re.I)


def _norm_value(v):
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else str(v)
    return v


def result_rows(rows: list[tuple]) -> list[tuple]:
    """Rows made comparable: floats rounded to 1e-6, non-finite floats as text."""
    return [tuple(_norm_value(v) for v in r) for r in rows]


def same_result(gold_sql: str, got: list[tuple], want: list[tuple]) -> bool:
    """Equal as lists when the gold has a top-level ORDER BY, else as multisets."""
    return got == want if ordered(gold_sql) else Counter(got) == Counter(want)


def ordered(sql: str) -> bool:
    """The query's outermost part has an ORDER BY (row order is part of the answer)."""
    return bool(_TOP_ORDER.search(sql.rsplit(")", 1)[-1]))


def result_key(sql: str, rows: list[tuple]) -> tuple:
    """A hashable key equal for two results that `same_result` would call equal (for grouping candidates)."""
    norm = result_rows(rows)
    return ("list", tuple(norm)) if ordered(sql) else ("bag", tuple(sorted(Counter(norm).items(), key=repr)))
