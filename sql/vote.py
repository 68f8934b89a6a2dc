"""Execution-guided choice among candidate SQL answers: run each read-only, drop the ones that fail, vote by result.

    from sql.vote import choose
    pick = choose([greedy_sql, *sampled_sqls], context_sql)      # schema DDL + sample rows (INSERTs)
    pick.sql, pick.agreement, pick.candidates, pick.failed

Candidates run in the sandbox (sql/sandbox.py: read-only, time-, row- and memory-capped) on the user's
sample rows; with a schema and no rows, on a database of generated rows (sql/sampledb.py), so the vote
still separates queries that fail from ones that run. Results are grouped by `sql.results.result_key`
(multisets, or lists when the query orders its rows); the largest group wins, ties go to the group that
holds the earliest candidate (the greedy answer is passed first). Candidates that return no rows lose to
ones that return rows when any do (an empty result is usually a wrong filter). When every candidate
fails, the first non-empty one is returned with agreement 0 and `none_ran` set: callers then draw one more
round of the same number of candidates at `RESAMPLING` (hotter: the first round's answers were all wrong in the
same few ways) and vote over both rounds (serving/text_to_sql.py, pipeline/evaluate/stage.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from sql.results import result_key
from sql.sampledb import from_schema
from sql.sandbox import Sandbox, SandboxError
from sql.statements import split_context

RESAMPLING = {"temperature": 1.0, "top_p": 0.95}     # the second round, drawn only when no candidate ran


@dataclass
class Pick:
    sql: str
    agreement: int       # candidates (counting repeats) that returned the winner's result
    candidates: int      # candidates given (non-empty)
    failed: int          # candidates that did not run
    groups: int = 0      # distinct results among those that ran

    @property
    def none_ran(self) -> bool:
        return self.candidates > 0 and self.failed == self.candidates


def _box(context: str, timeout_s: float) -> Sandbox:
    schema, rows = split_context(context)
    if rows.strip():
        return Sandbox.from_context(context, timeout_s=timeout_s)
    return Sandbox.from_connection(from_schema(schema), timeout_s=timeout_s)


def choose(sqls: list[str], context: str, timeout_s: float = 1.0) -> Pick:
    cands = [s for s in sqls if s and s.strip()]
    if not cands:
        return Pick("", 0, 0, 0)
    try:
        box = _box(context, timeout_s)
    except SandboxError:
        return Pick(cands[0], 0, len(cands), len(cands))
    outcome: dict[str, tuple | None] = {}
    with box:
        for sql in dict.fromkeys(cands):
            try:
                res = box.query(sql)
                outcome[sql] = (result_key(sql, res.rows), bool(res.rows))
            except SandboxError:
                outcome[sql] = None
    groups: dict[tuple, list[int]] = {}
    nonempty: dict[tuple, bool] = {}
    failed = 0
    for i, sql in enumerate(cands):
        out = outcome[sql]
        if out is None:
            failed += 1
            continue
        groups.setdefault(out[0], []).append(i)
        nonempty[out[0]] = out[1]
    if not groups:
        return Pick(cands[0], 0, len(cands), failed)
    pool = {k: v for k, v in groups.items() if nonempty[k]} or groups
    best = max(pool, key=lambda k: (len(pool[k]), -pool[k][0]))
    return Pick(cands[pool[best][0]], len(pool[best]), len(cands), failed, len(groups))
