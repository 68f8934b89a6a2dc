"""The foreign-key graph of a schema and the one shortest join path from some tables to another.

    from sql.joins import ForeignKeys
    fks = ForeignKeys.of(ddl)                        # CREATE TABLE statements read by SQLite itself
    fks.path({"stops"}, "lines")                      # [("stops", "line_id", "lines", "line_id")] or None
    fks.neighbours("orders")                          # {"customers", "order_items"}

SQLite reads the keys (PRAGMA foreign_key_list), so column-level REFERENCES, table-level FOREIGN KEY and keys
that point at a primary key without naming it are all understood as SQLite understands them. Edges are used
in both directions. `path` answers only when exactly one shortest path exists (the schema leaves one reading);
two equally short ways to join means no answer, not a guess.
"""
from __future__ import annotations

import functools
import sqlite3
from collections import deque
from dataclasses import dataclass, field

from sql.statements import split_statements

Edge = tuple[str, str, str, str]   # (from table, its column, to table, its column), table names lower case


@dataclass
class ForeignKeys:
    edges: dict[str, list[Edge]] = field(default_factory=dict)     # table -> edges leaving it (both directions)
    spelling: dict[str, str] = field(default_factory=dict)         # lower-case table name -> as declared

    @classmethod
    def of(cls, ddl: str) -> "ForeignKeys":
        """The schema's keys (cached per schema text: shared, never change it)."""
        return _keys_of(ddl)

    @classmethod
    def _read(cls, ddl: str) -> "ForeignKeys":
        db = sqlite3.connect(":memory:")
        try:
            for stmt in split_statements(ddl):
                if stmt.lstrip()[:6].upper() == "CREATE":
                    try:
                        db.execute(stmt)
                    except sqlite3.Error:
                        continue            # a statement SQLite cannot read adds no keys
            names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            keys = cls(spelling={n.lower(): n for n in names})
            for child in names:
                for row in db.execute(f'PRAGMA foreign_key_list("{child}")'):
                    parent, col, ref = row[2], row[3], row[4]
                    if ref is None:         # REFERENCES parent: its primary key
                        pk = [r[1] for r in db.execute(f'PRAGMA table_info("{parent}")') if r[5]]
                        if len(pk) != 1:
                            continue
                        ref = pk[0]
                    keys._link(child, col, parent, ref)
            return keys
        finally:
            db.close()

    def _link(self, a: str, col_a: str, b: str, col_b: str) -> None:
        if a.lower() == b.lower():
            return                          # a self-reference joins nothing new
        self.edges.setdefault(a.lower(), []).append((a.lower(), col_a, b.lower(), col_b))
        self.edges.setdefault(b.lower(), []).append((b.lower(), col_b, a.lower(), col_a))

    def neighbours(self, table: str) -> set[str]:
        return {e[2] for e in self.edges.get(table.lower(), [])}

    def path(self, start: set[str], target: str, max_hops: int = 3) -> list[Edge] | None:
        """The join path from any of `start` to `target` when exactly one shortest path exists, else None."""
        target = target.lower()
        frontier = {t.lower(): [[]] for t in start}            # table -> every shortest path reaching it
        seen = set(frontier)
        queue = deque(frontier)
        while queue:
            table = queue.popleft()
            paths = frontier[table]
            if table == target:
                return paths[0] if len(paths) == 1 else None
            if len(paths[0]) >= max_hops:
                continue
            for edge in self.edges.get(table, []):
                nxt = edge[2]
                if nxt in seen and (nxt not in frontier or len(frontier[nxt][0]) != len(paths[0]) + 1):
                    continue
                if nxt not in seen:
                    seen.add(nxt)
                    frontier[nxt] = []
                    queue.append(nxt)
                frontier[nxt].extend(p + [edge] for p in paths)
        return None


@functools.lru_cache(maxsize=64)
def _keys_of(ddl: str) -> ForeignKeys:
    return ForeignKeys._read(ddl)
