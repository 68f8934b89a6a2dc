"""Sandboxed SQLite execution: a throwaway in-memory database, capped in time, rows and memory, no file access.

Used wherever SQL we did not write runs: evaluation (gold vs predicted), the playground's "run on sample
data", execution-guided voting, and the dataset generator's verification. The database is `:memory:` (or,
for a user's own SQLite file, `Sandbox.on_file`: that file opened read-only in place, every query read-only);
ATTACH / DETACH, load_extension, PRAGMA writes and (in read-only mode) every write are refused by an
authorizer; a progress handler aborts any statement that runs past the time cap (loading the schema and
sample rows gets its own, reported, cap); fetching stops at the row cap and at a byte budget. SQLite's
heap is capped for the process (PRAGMA hard_heap_limit) and temporary tables and sorts stay in memory under
that cap (never a temp file on disk), so a `zeroblob` bomb or an ORDER BY over millions of generated rows
ends as a SandboxError("memory", ...) instead of taking the machine's memory. Every failure is a
SandboxError whose `kind` says which: denied | timeout | memory | load (the schema or sample rows) | error.

Single expensive calls: neither the progress handler nor Connection.interrupt() can stop one call of a SQLite
function, and some run for minutes on values under the 1 MB cap (instr/replace/trim/json_patch cost the product
of two arguments' lengths; printf('%.*c', 2e9, 'x') loops 2e9 times and then returns NULL, silently). Those
functions are replaced by guards that refuse a call over its work budget (naming the time cap) or a printf
wider than the value cap (naming that cap), and otherwise run SQLite's own function on a helper connection; a
LIKE/GLOB pattern is capped at LIKE_PATTERN_BYTES. Memory: SQLite frees what a query took, but glibc keeps it
(one arena per thread: a long-lived playground kept ~900 MB after a few hostile answers), so closing a sandbox
after which the process grew gives it back to the system (malloc_trim).

    from sql.sandbox import Sandbox
    with Sandbox.from_context(sql_context) as box:
        result = box.query("SELECT ...")          # -> QueryResult(columns, rows, truncated)
"""
from __future__ import annotations

import functools
import os
import re
import sqlite3
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MAX_ROWS = 1000
LOAD_TIMEOUT_S = 5.0                 # schema + sample rows (trusted, but maybe large)
MAX_VALUE_BYTES = 1_000_000          # no single string/blob over 1 MB
MAX_RESULT_BYTES = 16_000_000        # rows fetched into Python stop here (they live outside SQLite's heap)
HEAP_LIMIT_BYTES = 384 * 2**20       # SQLite's heap, for the whole process: every sandbox shares it
LIKE_PATTERN_BYTES = 100             # matching costs value x pattern: 100 bytes over a 1 MB value ~0.2-0.35 s
TRIM_ABOVE_BYTES = 32 * 2**20        # a sandbox after which the process grew more than this gives memory back
# Work one call of these SQLite functions may do: (length of arg a) x (length of arg b), each budget set to about
# 0.1-0.2 s (measured on 3.40: instr 1.2e10 pairs/s, replace 3.8e10, trim 8e7, json_patch ~1e9 byte pairs/s).
# The rest of SQLite's functions are linear in their arguments (or bounded by the value cap) and keep running
# as SQLite's own.
_CALL_BUDGETS = {  # name: (argument count, a, b, budget)
    "instr": (2, 0, 1, 2e9), "replace": (3, 0, 1, 2e9), "trim": (2, 0, 1, 1e7), "ltrim": (2, 0, 1, 1e7),
    "rtrim": (2, 0, 1, 1e7), "json_patch": (2, 0, 1, 3e9),
}
# the same functions done by Python where every argument is text (exact: Python strings are valid UTF-8, which
# SQLite matches byte-wise) and the result stays under the value cap; anything else goes to SQLite's own
_TEXT_EXACT = {
    "instr": lambda s, t: s.find(t) + 1, "replace": lambda s, t, r: s.replace(t, r) if t else s,
    "trim": lambda s, c: s.strip(c), "ltrim": lambda s, c: s.lstrip(c), "rtrim": lambda s, c: s.rstrip(c),
}
_GUARDED = (*_CALL_BUDGETS, "printf", "format")
_PRINTF_SPEC = re.compile(r"%([-+ #!0,l.*0-9]*)(.?)", re.S)
_TRUNCATING = set("szqQw")           # printf conversions whose precision cuts the output instead of widening it
_heap_capped = False
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_only_uri(path: str) -> str:
    """SQLite's URI for opening `path` read-only (the file is never written; '?', '#' and '%' in it are escaped)."""
    from urllib.parse import quote

    return f"file:{quote(os.path.abspath(path))}?mode=ro"


def _cap_heap(conn: sqlite3.Connection) -> None:
    global _heap_capped
    if not _heap_capped:
        conn.execute(f"PRAGMA hard_heap_limit={HEAP_LIMIT_BYTES}")
        _heap_capped = True


def _size(value) -> int:
    return len(value) if isinstance(value, (str, bytes)) else 8


def _rss() -> int:
    """This process's resident memory in bytes (0 where /proc is missing); ~5 us."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            return int(os.read(fd, 128).split()[1]) * _PAGE
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        return 0


_trim = None


def _give_memory_back() -> None:
    """Return the free memory glibc keeps in its arenas to the system (no-op on other C libraries)."""
    global _trim
    if _trim is None:
        import ctypes

        try:
            _trim = getattr(ctypes.CDLL(None), "malloc_trim", False)
        except OSError:
            _trim = False
    if _trim:
        _trim(0)


@functools.lru_cache(maxsize=256)
def _printf_specs(text: str) -> tuple[tuple[tuple[tuple[str, str], ...], str], ...]:
    """printf's conversions: ((('.' or '', digits or '*'), ...), conversion letter) each; '%%' left out."""
    return tuple((tuple(re.findall(r"(\.?)(\*|\d+)", spec)), conv)
                 for spec, conv in _PRINTF_SPEC.findall(text) if spec or conv != "%")


def _printf_width(fmt, args: tuple, as_int) -> int:
    """An upper bound on the characters printf(fmt, *args) pads or repeats: widths, and precisions that widen
    the output (%.*c repeats, %.Nd zero-pads), whether literal or taken from an argument by '*'."""
    if fmt is None:
        return 0
    total, i = 0, 0
    for numbers, conv in _printf_specs(fmt.decode("latin-1") if isinstance(fmt, bytes) else str(fmt)):
        width = precision = 0
        for part, number in numbers:
            if number == "*":
                number = abs(as_int(args[i]) if i < len(args) else 0)
                i += 1
            if part:
                precision = int(number)
            else:
                width = int(number)
        if conv not in ("%", "n", ""):
            i += 1
        total += max(width, 0 if conv in _TRUNCATING else precision)
    return total


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
    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, max_rows: int = DEFAULT_MAX_ROWS, file: str | None = None):
        """`file`: run on that SQLite file itself, opened read-only (never written, every write refused), instead
        of a throwaway in-memory database."""
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.conn = sqlite3.connect(read_only_uri(file) if file else ":memory:", uri=bool(file), isolation_level=None,
                                    check_same_thread=False)
        if hasattr(self.conn, "enable_load_extension"):
            self.conn.enable_load_extension(False)
        # no single string/blob over 1 MB (randomblob(1e9) would otherwise allocate a gigabyte)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_BYTES)
        _cap_heap(self.conn)
        self.conn.execute("PRAGMA temp_store=MEMORY")   # sorts and temp tables under the heap cap, not on disk
        self._read_only = False
        self._on_file = bool(file)                  # a user's file: every query read-only, whatever is asked
        self._deadline = float("inf")
        self._limit_s = timeout_s
        self._tripped: SandboxError | None = None   # why a guard stopped the statement (SQLite only says "raised")
        self._helper: sqlite3.Connection | None = None
        self._rss_at_open = _rss()
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(self._progress, 2000)
        for name, (nargs, a, b, budget) in _CALL_BUDGETS.items():
            self.conn.create_function(name, nargs, self._guard(name, nargs, a, b, budget), deterministic=True)
        for name in ("printf", "format"):
            self.conn.create_function(name, -1, self._guard_printf(name), deterministic=True)

    # --------------------------------------------------------------------------------------- setup
    @classmethod
    def from_context(cls, context: str, **kw) -> "Sandbox":
        box = cls(**kw)
        try:
            box.load(context)
        except BaseException:
            box.close()            # what the failed load took goes back now, not when the traceback is dropped
            raise
        return box

    @classmethod
    def from_database(cls, path: str, **kw) -> "Sandbox":
        """An in-memory copy of a SQLite file (the file itself is opened read-only and never written)."""
        box = cls(**kw)
        src = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            src.backup(box.conn)
        except sqlite3.DatabaseError as e:
            raise SandboxError("error", f"{path}: {e}") from None
        finally:
            src.close()
        return box

    @classmethod
    def on_file(cls, path: str, **kw) -> "Sandbox":
        """The SQLite file itself, opened read-only in place (no copy: a database of any size), with the same caps
        and denials; every query on it is read-only."""
        try:
            return cls(file=path, **kw)
        except sqlite3.DatabaseError as e:
            raise SandboxError("error", f"{path}: {e}") from None

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
        self._deadline, self._limit_s, self._tripped = time.monotonic() + limit, limit, None
        try:
            self.conn.executescript(context)
        except (sqlite3.DatabaseError, MemoryError) as e:
            err = self._classify(e, limit)
            raise SandboxError("load", f"the schema or sample rows did not load ({err.kind}): {err}") from None
        finally:
            self._deadline = float("inf")

    # ------------------------------------------------------------------------------------- running
    def query(self, sql: str, read_only: bool = True) -> QueryResult:
        """Run one statement; read-only unless asked (always on a file). Fetches at most max_rows rows."""
        read_only = read_only or self._on_file
        self._read_only = read_only
        start = time.monotonic()
        self._deadline, self._limit_s, self._tripped = start + self.timeout_s, self.timeout_s, None
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
        self._deadline, self._limit_s, self._tripped = time.monotonic() + self.timeout_s, self.timeout_s, None
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
        if self._helper is not None:
            self._helper.close()
        if _rss() > self._rss_at_open + TRIM_ABOVE_BYTES:
            _give_memory_back()

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

    def _guard(self, name: str, nargs: int, a: int, b: int, budget: float):
        """SQLite's `name`, refused when (length of argument a) x (length of argument b) is over `budget`."""
        sql = f"SELECT {name}({', '.join('?' * nargs)})"
        exact = _TEXT_EXACT.get(name)

        def call(*args):
            la, lb = (len(v) if isinstance(v, (str, bytes)) else 32 for v in (args[a], args[b]))
            if la * lb > budget:
                self._trip(SandboxError("timeout", f"stopped: {name}() over {la:,} x {lb:,} characters would run "
                                                   f"past the {self._limit_s:g} s time cap (one call cannot be "
                                                   "interrupted)"))
            if exact and all(type(v) is str for v in args) and (
                    name != "replace" or len(args[0]) + len(args[2]) * (len(args[0]) // max(len(args[1]), 1))
                    <= MAX_VALUE_BYTES):
                return exact(*args)
            return self._builtin(sql, args)
        return call

    def _guard_printf(self, name: str):
        """SQLite's printf/format, refused when its padding or repeats would build a value over the value cap
        (SQLite would loop for seconds and then return NULL); a NULL from a non-NULL format is refused too."""
        too_big = f"{name}() builds a value over {MAX_VALUE_BYTES // 1000} KB (the cap for one value)"

        def call(*args):
            if not args:
                return self._builtin(f"SELECT {name}()", args)
            as_int = lambda v: self._builtin("SELECT CAST(? AS INTEGER)", (v,)) or 0  # noqa: E731 - SQLite's reading
            if _printf_width(args[0], args[1:], as_int) > MAX_VALUE_BYTES:
                self._trip(SandboxError("memory", too_big))
            out = self._builtin(f"SELECT {name}({', '.join('?' * len(args))})", args)
            if out is None and args[0] is not None:
                self._trip(SandboxError("memory", too_big))
            return out
        return call

    def _builtin(self, sql: str, args: tuple):
        """SQLite's own function on a helper connection with the same value cap (ours shadows it here)."""
        if self._helper is None:
            self._helper = sqlite3.connect(":memory:", check_same_thread=False)
            self._helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        try:
            return self._helper.execute(sql, args).fetchone()[0]
        except (sqlite3.DatabaseError, MemoryError) as e:
            self._trip(self._classify(e, self._limit_s))

    def _trip(self, err: SandboxError):
        self._tripped = err
        raise err

    def _classify(self, e: Exception, limit_s: float) -> SandboxError:
        msg = str(e)
        if "user-defined function raised exception" in msg:
            names = ", ".join(n + "()" for n in _GUARDED)
            return self._tripped or SandboxError("error", f"one of {names} could not read its arguments (text that "
                                                          "is not valid UTF-8?): cast the value to a BLOB first")
        if "pattern too complex" in msg:
            return SandboxError("timeout", f"a LIKE or GLOB pattern over {LIKE_PATTERN_BYTES} bytes (the cap for "
                                           f"patterns, which keeps one match within the {limit_s:g} s time cap)")
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
