"""Sandboxed SQLite execution: a throwaway in-memory database, capped in time, rows and memory, no file access.

Used wherever SQL we did not write runs: evaluation (gold vs predicted), the playground's "run on sample
data", execution-guided voting, and the dataset generator's verification. The database is `:memory:`;
ATTACH / DETACH, load_extension, PRAGMA writes and (in read-only mode) every write are refused by an
authorizer; a progress handler aborts any statement that runs past the time cap (loading the schema and
sample rows gets its own, reported, cap); fetching stops at the row cap and at a byte budget. SQLite's
heap is capped for the process (PRAGMA hard_heap_limit) and temporary tables and sorts stay in memory under
that cap (never a temp file on disk), so a `zeroblob` bomb or an ORDER BY over millions of generated rows
ends as a SandboxError("memory", ...) instead of taking the machine's memory. Every failure is a
SandboxError whose `kind` says which: denied | timeout | memory | load (the schema or sample rows) | error.

    from sql.sandbox import Sandbox
    with Sandbox.from_context(sql_context) as box:
        result = box.query("SELECT ...")          # -> QueryResult(columns, rows, truncated)
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MAX_ROWS = 1000
LOAD_TIMEOUT_S = 5.0                 # schema + sample rows (trusted, but maybe large)
MAX_VALUE_BYTES = 1_000_000          # no single string/blob over 1 MB
MAX_RESULT_BYTES = 16_000_000        # rows fetched into Python stop here (they live outside SQLite's heap)
HEAP_LIMIT_BYTES = 384 * 2**20       # SQLite's heap, for the whole process: every sandbox shares it
_heap_capped = False


def _cap_heap(conn: sqlite3.Connection) -> None:
    global _heap_capped
    if not _heap_capped:
        conn.execute(f"PRAGMA hard_heap_limit={HEAP_LIMIT_BYTES}")
        _heap_capped = True


def _size(value) -> int:
    return len(value) if isinstance(value, (str, bytes)) else 8

_WRITE_ACTIONS = {
    getattr(sqlite3, n) for n in (
        "SQLITE_INSERT", "SQLITE_UPDATE", "SQLITE_DELETE", "SQLITE_CREATE_TABLE", "SQLITE_CREATE_INDEX",
        "SQLITE_CREATE_VIEW", "SQLITE_CREATE_TRIGGER", "SQLITE_CREATE_TEMP_TABLE", "SQLITE_CREATE_TEMP_INDEX",
        "SQLITE_CREATE_TEMP_VIEW", "SQLITE_CREATE_TEMP_TRIGGER", "SQLITE_DROP_TABLE", "SQLITE_DROP_INDEX",
        "SQLITE_DROP_VIEW", "SQLITE_DROP_TRIGGER", "SQLITE_DROP_TEMP_TABLE", "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_VIEW", "SQLITE_DROP_TEMP_TRIGGER", "SQLITE_ALTER_TABLE", "SQLITE_REINDEX",
        "SQLITE_ANALYZE", "SQLITE_CREATE_VTABLE", "SQLITE_DROP_VTABLE",
    ) if hasattr(sqlite3, n)
}
_ALWAYS_DENIED = {getattr(sqlite3, n) for n in ("SQLITE_ATTACH", "SQLITE_DETACH") if hasattr(sqlite3, n)}
# PRAGMAs that only read; anything else (journal_mode=, writable_schema=, ...) is refused.
_READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "foreign_key_list", "table_list"}


class SandboxError(Exception):
    """The statement was refused, failed, or ran past its cap; `kind` says which."""

    def __init__(self, kind: str, message: str):
        self.kind = kind  # "denied" | "timeout" | "memory" | "load" | "error"
        super().__init__(message)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool          # more rows existed than max_rows
    elapsed_s: float
    changes: int = 0         # rows written (write mode only)


class Sandbox:
    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS):
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if hasattr(self.conn, "enable_load_extension"):
            self.conn.enable_load_extension(False)
        # no single string/blob over 1 MB (randomblob(1e9) would otherwise allocate a gigabyte)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        _cap_heap(self.conn)
        self.conn.execute("PRAGMA temp_store=MEMORY")   # sorts and temp tables under the heap cap, not on disk
        self._read_only = False
        self._deadline = float("inf")
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(self._progress, 2000)

    # --------------------------------------------------------------------------------------- setup
    @classmethod
    def from_context(cls, context: str, **kw) -> "Sandbox":
        box = cls(**kw)
        box.load(context)
        return box

    @classmethod
    def from_database(cls, path: str, **kw) -> "Sandbox":
        """An in-memory copy of a SQLite file (the file itself is opened read-only and never written)."""
        box = cls(**kw)
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            src.backup(box.conn)
        except sqlite3.DatabaseError as e:
            raise SandboxError("error", f"{path}: {e}") from None
        finally:
            src.close()
        return box

    @classmethod
    def from_connection(cls, src: sqlite3.Connection, **kw) -> "Sandbox":
        box = cls(**kw)
        src.backup(box.conn)
        return box

    def load(self, context: str) -> None:
        """Run setup SQL (CREATE + INSERT) with writes allowed but the same caps and denials; a failure is a
        SandboxError("load", ...) that says it was the schema or the sample rows, not the query."""
        self._read_only = False
        limit = max(self.timeout_s, LOAD_TIMEOUT_S)
        self._deadline = time.monotonic() + limit
        try:
            self.conn.executescript(context)
        except (sqlite3.DatabaseError, MemoryError) as e:
            err = self._classify(e, limit)
            raise SandboxError("load", f"the schema or sample rows did not load ({err.kind}): {err}") from None
        finally:
            self._deadline = float("inf")

    # ------------------------------------------------------------------------------------- running
    def query(self, sql: str, read_only: bool = True) -> QueryResult:
        """Run one statement; read-only unless asked. Fetches at most max_rows rows."""
        self._read_only = read_only
        start = time.monotonic()
        self._deadline = start + self.timeout_s
        before = self.conn.total_changes
        try:
            cur = self.conn.execute(sql)
            rows, size = [], 0
            if cur.description:
                for row in cur:
                    rows.append(row)
                    size += sum(_size(v) for v in row)
                    if len(rows) > self.max_rows or size > MAX_RESULT_BYTES:
                        break
            truncated = len(rows) > self.max_rows or size > MAX_RESULT_BYTES
            columns = [d[0] for d in cur.description] if cur.description else []
            return QueryResult(columns, rows[: self.max_rows], truncated, time.monotonic() - start,
                               self.conn.total_changes - before)
        except sqlite3.Warning as e:  # e.g. "You can only execute one statement at a time."
            raise SandboxError("error", str(e)) from None
        except (sqlite3.DatabaseError, MemoryError) as e:
            raise self._classify(e, self.timeout_s) from None
        finally:
            self._deadline = float("inf")
            self._read_only = False
            if self.conn.in_transaction:
                self.conn.rollback() if read_only else self.conn.commit()

    def state(self) -> dict[str, list[tuple]]:
        """Every table's rows, sorted: compares database states after DML/DDL."""
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        self._deadline = time.monotonic() + self.timeout_s
        try:
            for n in names:
                try:
                    cols = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{n}")')]
                    rows = self.conn.execute(f'SELECT * FROM "{n}"').fetchmany(self.max_rows + 1)
                    out[n] = [tuple(cols)] + sorted(rows, key=repr)
                except sqlite3.DatabaseError as e:  # e.g. a view over a column that does not exist
                    out[n] = [("error", str(e))]
        finally:
            self._deadline = float("inf")
        return out

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ guards
    def _authorize(self, action, arg1, arg2, dbname, source):
        if action in _ALWAYS_DENIED:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() in ("load_extension", "writefile", "readfile"):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            if (arg1 or "").lower() not in _READ_PRAGMAS:
                return sqlite3.SQLITE_DENY
        if self._read_only and action in _WRITE_ACTIONS and not (dbname == "temp" and arg1 and arg1.startswith("sqlite_")):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def _classify(self, e: Exception, limit_s: float) -> SandboxError:
        msg = str(e)
        if isinstance(e, MemoryError) or "out of memory" in msg:
            return SandboxError("memory", f"stopped at the memory cap ({HEAP_LIMIT_BYTES // 2**20} MB for SQLite): "
                                          "the query builds values or sorts too large for a sample")
        if "string or blob too big" in msg:
            return SandboxError("memory", f"a value over {MAX_VALUE_BYTES // 1000} KB (the cap for one value)")
        if "interrupted" in msg:
            return SandboxError("timeout", f"stopped after {limit_s:g} s (time cap)")
        if "not authorized" in msg or "prohibited" in msg or "authorization denied" in msg:
            return SandboxError("denied", f"refused by the sandbox: {msg}")
        return SandboxError("error", msg)
