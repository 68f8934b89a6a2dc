"""Databases filled with generated rows that respect the schema: primary keys unique, foreign keys pointing at
existing parent rows, each column's values drawn from its own values in the original (when it has rows)
mixed with fresh ones of the column's type. Used for test-suite accuracy (a query right by coincidence on
one database is caught on the others) and to run candidates when a user gave a schema without rows.

    from sql.sampledb import fuzz_database, from_schema
    db = fuzz_database(sqlite3.connect(path), seed=1)       # same schema, new rows
    db = from_schema("CREATE TABLE t (id INT PRIMARY KEY, x TEXT);", seed=0)
"""
from __future__ import annotations

import random
import sqlite3


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


def from_schema(ddl: str, seed: int = 0, rows_per_table: int = 12) -> sqlite3.Connection:
    """A database with generated rows for a schema given as DDL only (no sample rows)."""
    empty = sqlite3.connect(":memory:")
    try:
        empty.executescript(ddl)
    except sqlite3.DatabaseError:
        pass  # whatever part of the schema SQLite accepts
    return fuzz_database(empty, seed, rows_per_table)
