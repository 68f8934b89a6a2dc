"""Spider-format evaluation: execution against the row's own database, and a test-suite mode.

Test-suite mode fills the schema with several generated databases (primary keys unique, foreign keys
pointing at existing parent rows, values of each column's type drawn from that column's own values in
the original database, mixed with fresh ones) so that two queries count as equal only if they agree on
the original database AND on every generated one: a query that is right by coincidence on one
database is caught.
"""
from __future__ import annotations

import sqlite3

from pipeline.evaluate.scoring import Score, result_rows, same_result, syntax
from sql.sampledb import fuzz_database
from sql.sandbox import Sandbox, SandboxError


def _result(box: Sandbox, sql: str):
    return result_rows(box.query(sql).rows)


def score_suite(db_path: str, gold: str, pred: str, suite: int = 0, timeout_s: float = 2.0) -> Score:
    """Execution match on the row's database, and on `suite` generated databases when suite > 0."""
    valid, exact = syntax(gold, pred)
    try:
        original = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        original.execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as e:
        return Score("unscorable", valid, exact, f"database {db_path}: {e}")
    if not pred.strip():
        return Score("empty_prediction", False, False)
    try:
        dbs = [original] + [fuzz_database(original, seed) for seed in range(suite)]
        for i, db in enumerate(dbs):
            with Sandbox.from_connection(db, timeout_s=timeout_s) as box:
                try:
                    want = _result(box, gold)
                except SandboxError as e:
                    if i == 0:
                        return Score("unscorable", valid, exact, f"gold: {e}")
                    continue  # gold fails on a generated database: that database says nothing
                try:
                    got = _result(box, pred)
                except SandboxError as e:
                    return Score(f"pred_{e.kind}", valid, exact, str(e))
            if not same_result(gold, got, want):
                return Score("mismatch" if i == 0 else "mismatch_suite", valid, exact,
                             "" if i == 0 else f"differs on generated database #{i}")
        return Score("match", valid, exact)
    finally:
        original.close()
