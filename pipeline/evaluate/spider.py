"""Spider-format evaluation: execution against the row's own database, and a test-suite mode.

Test-suite mode fills the schema with several generated databases (primary keys unique, foreign keys
pointing at existing parent rows, values of each column's type drawn from that column's own values in
the original database, mixed with fresh ones) so that two queries count as equal only if they agree on
the original database AND on every generated one: a query that is right by coincidence on one
database is caught.
"""
from __future__ import annotations

import random
import sqlite3
from pipeline.evaluate.scoring import Score, result_rows, same_result, syntax
from serving.sql.sandbox import Sandbox, SandboxError


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]


def _fresh(decl: str, rng: random.Random):
    t = (decl or "").upper()
    if "INT" in t:
        return rng.randint(-5, 1000)
    if any(x in t for x in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return round(rng.uniform(-10, 1000), 2)
    if "DATE" in t or "TIME" in t:
        return f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return rng.choice(["alpha", "beta", "gamma", "delta", "x", ""]) + str(rng.randint(0, 99))


def fuzz_database(original: sqlite3.Connection, seed: int, rows_per_table: int = 12) -> sqlite3.Connection:
    """A new in-memory database with the original's schema and generated rows."""
    rng = random.Random(seed)
    db = sqlite3.connect(":memory:")
    tables = _tables(original)
    for (sql,) in original.execute("SELECT sql FROM sqlite_master WHERE type IN ('table','index') AND sql IS NOT NULL "
                                   "AND name NOT LIKE 'sqlite_%'"):
        db.execute(sql)
    # parents first: order tables so that referenced tables are filled before referencing ones
    deps = {t: {r[2] for r in original.execute(f'PRAGMA foreign_key_list("{t}")')} & set(tables) - {t} for t in tables}
    ordered, seen = [], set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in seen and deps[t] <= seen] or [t for t in tables if t not in seen]
        ordered.append(ready[0])
        seen.add(ready[0])
    for t in ordered:
        cols = list(original.execute(f'PRAGMA table_info("{t}")'))        # cid, name, type, notnull, default, pk
        fks = {r[3]: (r[2], r[4]) for r in original.execute(f'PRAGMA foreign_key_list("{t}")')}
        pools = {c[1]: [r[0] for r in original.execute(f'SELECT DISTINCT "{c[1]}" FROM "{t}" LIMIT 200')] for c in cols}
        used_pk: set = set()
        for _ in range(rows_per_table):
            row = []
            for _cid, name, decl, _nn, _d, pk in cols:
                if name in fks:
                    parent, pcol = fks[name]
                    parents = [r[0] for r in db.execute(f'SELECT "{pcol or "rowid"}" FROM "{parent}"')]
                    v = rng.choice(parents) if parents else None
                elif pools[name] and rng.random() < 0.7:
                    v = rng.choice(pools[name])
                else:
                    v = _fresh(decl, rng)
                if pk:
                    while v in used_pk or v is None:
                        v = _fresh(decl or "INT", rng)
                    used_pk.add(v)
                row.append(v)
            try:
                db.execute(f'INSERT INTO "{t}" VALUES ({", ".join("?" * len(row))})', row)
            except sqlite3.DatabaseError:
                pass  # a constraint we did not model (UNIQUE, CHECK): skip this row
    db.commit()
    return db


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
