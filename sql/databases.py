"""Your database: a SQLite file or a PostgreSQL URL, its schema read as the prompt's DDL and sample rows, and
answers run on it read-only, capped in time, rows and memory.

    from sql.databases import connect
    db = connect("postgresql://ann@db.example:5432/shop", password="...")   # or a SQLite file's path
    s = db.schema()          # Schema: s.ddl (CREATE TABLE ...;), s.rows (INSERT INTO ... VALUES ...;), s.tables
    r = db.run("SELECT ...", from_dialect="sqlite")     # QueryResult(columns, rows, truncated, elapsed_s)
    db.label                 # 'postgresql://ann@db.example:5432/shop': what the UI shows, never the password

What the prompt gets is what a user would paste (the format the model was trained on): one `CREATE TABLE` a
table with its columns and types, a single-column primary key inline (`id INTEGER PRIMARY KEY`), a single-column
foreign key inline (`REFERENCES customers(id)`), composite keys at the end; PostgreSQL's types named as the
training data names them (INTEGER, TEXT, REAL, NUMERIC(p,s), DATE, TIMESTAMP, BOOLEAN; other types as
PostgreSQL writes them, arrays and enums as TEXT). Views are listed as tables (a question reads them alike).
Then the first SAMPLE_ROWS rows of each table as one `INSERT INTO t VALUES (...), (...);`, long text cut.

Running an answer, read-only three times over:
- before it runs (`read_only_statement`): one statement, a query (SELECT, set operation, VALUES, WITH ...), no
  data-changing statement anywhere in it (a DELETE ... RETURNING inside a CTE included), no SELECT INTO, no
  FOR UPDATE/SHARE, no function from a list that changes state or reads the server's files (nextval, setval,
  set_config, pg_read_file, lo_import, dblink, pg_terminate_backend, ...): refused with the reason, never sent;
- SQLite: the file is opened with `?mode=ro` through sql/sandbox.py (`Sandbox.on_file`): its authorizer refuses
  every write, and its time, row, value and heap caps apply;
- PostgreSQL (psycopg 3): a connection of its own for each query, closed afterwards, opened with
  `default_transaction_read_only=on` and `statement_timeout`; the query runs in a `READ ONLY` transaction (a
  write hidden in a function the database defines fails there: "cannot execute UPDATE in a read-only
  transaction") through a server-side cursor, so only the rows fetched cross the wire: at most max_rows + 1
  and MAX_RESULT_BYTES, in batches.
Every failure is a DatabaseError whose message is one line naming what was wrong and how to fix it, and whose
`kind` says which: url | connect | auth | empty | denied | timeout | memory | error.
"""
from __future__ import annotations

import datetime
import decimal
import json
import os
import re
import time
from dataclasses import dataclass, field

from core.errors import SqlgenieError
from sql.sandbox import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, MAX_RESULT_BYTES, QueryResult, Sandbox, SandboxError

SAMPLE_ROWS = 3                  # rows per table put in the sample rows
MAX_TABLES = 100                 # tables read into the schema (a prompt holds far fewer)
TEXT_CHARS = 80                  # a sample text value longer than this is cut (…)
CONNECT_TIMEOUT_S = 5
SCHEMA_TIMEOUT_S = 10.0          # reading the catalog and the sample rows
FETCH_BATCH = 200
SQLITE_MAGIC = b"SQLite format 3\x00"
# PostgreSQL functions that change state, reach outside the database or read the server's files: refused by
# name before a query runs (a READ ONLY transaction refuses most writes anyway; these it would let through or
# is not the right place to find out).
PG_DENIED_FUNCTIONS = frozenset({
    "nextval", "setval", "set_config", "pg_terminate_backend",
    "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_create_restore_point",
    "pg_promote", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir",
    "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "lo_import", "lo_export", "lo_unlink", "lo_create",
    "lo_creat", "lo_from_bytea", "lo_put", "lo_open", "lo_write", "lo_truncate", "pg_notify",
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared", "pg_logical_emit_message", "pg_replication_origin_create",
    "pg_drop_replication_slot", "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
    "txid_current", "pg_current_xact_id", "dblink", "dblink_exec", "dblink_connect", "dblink_send_query",
    "pg_file_write", "pg_file_rename", "pg_file_unlink",
})
SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension", "writefile", "readfile", "edit", "fts3_tokenizer"})


class DatabaseError(SqlgenieError):
    """A database that cannot be reached or read, or an answer refused or stopped on it; `kind` says which."""

    def __init__(self, kind: str, message: str):
        self.kind = kind          # url | connect | auth | empty | denied | timeout | memory | error
        super().__init__(message)


@dataclass
class Table:
    name: str
    columns: list[tuple[str, str]]                          # (name, type)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[tuple[list[str], str, list[str]]] = field(default_factory=list)   # (cols, table, its cols)


@dataclass
class Schema:
    ddl: str                      # CREATE TABLE statements, one a line
    rows: str                     # INSERT statements, one a table that has rows
    tables: list[str]
    dialect: str                  # sqlglot's name for the engine: sqlite | postgres
    notes: list[str] = field(default_factory=list)    # what was left out (tables over MAX_TABLES, unreadable rows)


# ------------------------------------------------------------------------------------------------ connecting
def connect(target: str, password: str | None = None) -> "Database":
    """A SQLite file (its path, or sqlite:///path) or a PostgreSQL URL (postgresql://user@host:port/dbname, or a
    unix socket: postgresql://user@/dbname?host=/run/postgresql), reached once to check it answers. `password`
    travels apart from the URL (a password in the URL works too); neither is ever part of a label or message."""
    target = (target or "").strip()
    if not target:
        raise DatabaseError("url", "no database given: type a SQLite file's path or a URL such as "
                                   "postgresql://user@host:5432/dbname")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", target)
    if m:
        scheme = m.group(1).lower()
        if scheme.split("+")[0] in ("postgresql", "postgres"):
            db = PostgresDatabase.from_url(target, password)
        elif scheme.split("+")[0] == "sqlite":       # SQLAlchemy's form: sqlite:///relative.db, sqlite:////abs.db
            rest = target[m.end():]
            db = SqliteDatabase(rest[1:] if rest.startswith("/") else rest)
        else:
            raise DatabaseError("url", f"{scheme}:// databases are not supported: connect a PostgreSQL URL "
                                       "(postgresql://user@host:5432/dbname) or a SQLite file")
    else:
        db = SqliteDatabase(target)
    db.check()
    return db


class Database:
    """What both engines offer: schema() for the prompt, run() for an answer. No connection is kept open."""

    kind = ""
    dialect = ""
    label = ""

    def check(self) -> None:
        raise NotImplementedError

    def schema(self, rows_per_table: int = SAMPLE_ROWS) -> Schema:
        raise NotImplementedError

    def run(self, sql: str, from_dialect: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        raise NotImplementedError

    def _statement(self, sql: str, from_dialect: str | None) -> str:
        """The answer written for this engine, refused if it could write (before anything is sent)."""
        if from_dialect and from_dialect != self.dialect:
            sql = transpile(sql, from_dialect, self.dialect)
        return read_only_statement(sql, self.dialect, self.label)

    def _schema(self, tables: list[Table], samples: dict[str, list[tuple]], notes: list[str]) -> Schema:
        if not tables:
            raise DatabaseError("empty", f"{self.label} has no tables (none this user may read): connect the "
                                         "database that holds your data, or create its tables first")
        rows = [inserts(t.name, samples[t.name], self.dialect) for t in tables if samples.get(t.name)]
        return Schema("\n".join(create_table(t, self.dialect) for t in tables), "\n".join(rows),
                      [t.name for t in tables], self.dialect, notes)

    def __repr__(self) -> str:          # never the password
        return f"<{type(self).__name__} {self.label}>"


# ------------------------------------------------------------------------------------------------ SQLite
class SqliteDatabase(Database):
    kind, dialect = "sqlite", "sqlite"

    def __init__(self, path: str):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.label = f"sqlite:{self.path}"

    def check(self) -> None:
        p = self.path
        if not os.path.exists(p):
            raise DatabaseError("url", f"no such file: {p}: give the path of a SQLite database file (or a URL such "
                                       "as postgresql://user@host:5432/dbname)")
        if os.path.isdir(p):
            raise DatabaseError("url", f"{p} is a folder: give the path of a SQLite database file inside it")
        try:
            with open(p, "rb") as f:
                head = f.read(16)
        except OSError as e:
            raise DatabaseError("connect", f"cannot read {p}: {e.strerror}: give this process read access") from None
        if head and head != SQLITE_MAGIC:
            raise DatabaseError("url", f"{p} is not a SQLite database (it does not start with 'SQLite format 3'): "
                                       "give a .sqlite/.db file")

    def _open(self, timeout_s: float, max_rows: int) -> Sandbox:
        try:
            return Sandbox.on_file(self.path, timeout_s=timeout_s, max_rows=max_rows)
        except SandboxError as e:
            raise DatabaseError("connect", f"cannot open {self.path} read-only: {str(e).split(': ')[-1]}") from None

    def schema(self, rows_per_table: int = SAMPLE_ROWS) -> Schema:
        self.check()
        tables, samples, notes = [], {}, []
        with self._open(SCHEMA_TIMEOUT_S, DEFAULT_MAX_ROWS * 10) as box:     # the catalog's rows are not capped low
            try:
                names = [r[0] for r in box.query(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY type = 'view', rowid").rows]
                for name in names[:MAX_TABLES]:
                    q = quote_ident(name, "sqlite")
                    cols = box.query(f"PRAGMA table_info({q})").rows         # cid, name, type, notnull, dflt, pk
                    fks: dict[int, tuple[list[str], str, list[str]]] = {}
                    for _id, _seq, parent, src, dst, *_ in box.query(f"PRAGMA foreign_key_list({q})").rows:
                        f = fks.setdefault(_id, ([], parent, []))
                        f[0].append(src)
                        f[2].append(dst or "")
                    pk = [c[1] for c in sorted((c for c in cols if c[5]), key=lambda c: c[5])]
                    tables.append(Table(name, [(c[1], c[2] or "") for c in cols], pk,
                                        [(a, p, b if all(b) else []) for a, p, b in fks.values()]))
                    try:
                        samples[name] = box.query(f"SELECT * FROM {q} LIMIT {int(rows_per_table)}").rows
                    except SandboxError as e:
                        notes.append(f"no sample rows from {name}: {e}")
            except SandboxError as e:
                raise DatabaseError("error", f"cannot read the schema of {self.path}: {e}") from None
        if len(names) > MAX_TABLES:
            notes.append(f"{len(names) - MAX_TABLES} more tables left out (the first {MAX_TABLES} are read)")
        return self._schema(tables, samples, notes)

    def run(self, sql: str, from_dialect: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        stmt = self._statement(sql, from_dialect)
        with self._open(timeout_s, max_rows) as box:
            try:
                return box.query(stmt, read_only=True)
            except SandboxError as e:
                raise DatabaseError(e.kind, str(e)) from None


# ------------------------------------------------------------------------------------------------ PostgreSQL
_PG_TYPES = [
    (re.compile(r"^(smallint|integer|bigint|int[248]?|(small|big)?serial[248]?)$"), "INTEGER"),
    (re.compile(r"^(text|character varying|varchar|character|char|bpchar|name|citext)(\(\d+\))?$"), "TEXT"),
    (re.compile(r"^(real|double precision|float[48]?)$"), "REAL"),
    (re.compile(r"^timestamp.*$"), "TIMESTAMP"),
    (re.compile(r"^time(\(\d+\))? with(out)? time zone$"), "TIME"),
]
_PLAIN_TYPE = re.compile(r"^[a-z][a-z0-9_ ]*(\(\d+(,\s*\d+)?\))?$")


def pg_type(formatted: str, typtype: str = "b") -> str:
    """A PostgreSQL column type (format_type's text) as the training data names types; arrays and enums TEXT."""
    t = formatted.strip().lower()
    if t.endswith("]") or typtype == "e":
        return "TEXT"
    for pattern, name in _PG_TYPES:
        if pattern.match(t):
            return name
    return t.upper() if _PLAIN_TYPE.match(t) else "TEXT"


_PG_TABLES = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND pg_table_is_visible(c.oid)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relkind IN ('v', 'm'), c.oid"""
_PG_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), t.typtype
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"""
_PG_KEYS = """
SELECT con.conrelid, con.contype,
  ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
  fc.relname,
  ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint con LEFT JOIN pg_class fc ON fc.oid = con.confrelid
WHERE con.conrelid = ANY(%s) AND con.contype IN ('p', 'f') ORDER BY con.conrelid, con.contype DESC, con.conname"""


class PostgresDatabase(Database):
    kind, dialect = "postgresql", "postgres"

    def __init__(self, params: dict, password: str | None = None):
        self.params = {k: v for k, v in params.items() if k != "password"}
        self._password = password or params.get("password") or None
        host = self.params.get("host") or "localhost"
        where = f"{host}:{self.params.get('port') or 5432}"
        self.where = where
        self.label = (f"postgresql://{self.params['user'] + '@' if self.params.get('user') else ''}{where}/"
                      f"{self.params.get('dbname') or ''}")

    @classmethod
    def from_url(cls, url: str, password: str | None = None) -> "PostgresDatabase":
        from psycopg.conninfo import conninfo_to_dict

        url = re.sub(r"^[A-Za-z0-9+.-]+://", "postgresql://", url)     # postgres://, postgresql+psycopg://
        try:
            params = conninfo_to_dict(url)
        except Exception as e:  # noqa: BLE001 - psycopg says ProgrammingError; the message is libpq's
            secret = _url_password(url)
            raise DatabaseError("url", f"the URL does not parse ({_scrub(_first_line(e), secret)}): write it as "
                                       "postgresql://user@host:5432/dbname (the password in its own field)") from None
        port = str(params.get("port") or "5432")
        if not all(p.isdigit() for p in port.split(",")):
            raise DatabaseError("url", f"port {port!r} is not a number: write the URL as "
                                       "postgresql://user@host:5432/dbname")
        return cls(params, password)

    # -------------------------------------------------------------------------------- a connection
    def _connect(self, statement_timeout_s: float):
        """A new connection: read-only by default for every transaction, statements capped in time. Closed by the
        caller (`with`)."""
        import psycopg

        options = (f"-c default_transaction_read_only=on -c statement_timeout={int(statement_timeout_s * 1000)} "
                   "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=1000")
        try:
            return psycopg.connect(**self.params, password=self._password, connect_timeout=CONNECT_TIMEOUT_S,
                                   options=options, application_name="sqlgenie (read-only)", autocommit=False)
        except psycopg.Error as e:
            raise self._connect_error(e) from None

    def _connect_error(self, e: Exception) -> DatabaseError:
        msg = _scrub(str(e), self._password)
        user = self.params.get("user") or "(your login name)"
        db = self.params.get("dbname") or user
        if "password authentication failed" in msg:
            return DatabaseError("auth", f"wrong password for user {user} at {self.where} (or no such user): check the "
                                         "user in the URL and type the password in the password field")
        if "no password supplied" in msg:
            return DatabaseError("auth", f"{self.where} asks user {user} for a password: type it in the password field")
        if re.search(r'database ".*" does not exist', msg):
            return DatabaseError("connect", f"no database named {db} at {self.where}: check the name at the end of the "
                                            "URL (postgresql://user@host:5432/dbname)")
        if re.search(r'role ".*" does not exist', msg):
            return DatabaseError("auth", f"no user named {user} at {self.where}: put an existing user before the @")
        if "Connection refused" in msg:
            return DatabaseError("connect", f"nothing answers at {self.where} (connection refused): is the server "
                                            "running, and are the host and port in the URL right?")
        if "No such file or directory" in msg and "socket" in msg:
            return DatabaseError("connect", f"no server listens on the unix socket in {self.params.get('host')} "
                                            f"(port {self.params.get('port') or 5432}): is it running, and is host= "
                                            "the socket's folder?")
        if "resolve host" in msg or "could not translate host name" in msg:
            return DatabaseError("connect", f"unknown host {self.params.get('host')}: check the host in the URL")
        if "timeout expired" in msg or "timed out" in msg:
            return DatabaseError("connect", f"no answer from {self.where} in {CONNECT_TIMEOUT_S} s: check the host "
                                            "and port, and that a firewall lets you through")
        if "pg_hba.conf" in msg:
            return DatabaseError("auth", f"{self.where} does not let user {user} in from here (pg_hba.conf): ask its "
                                         "administrator for access, or connect as another user")
        return DatabaseError("connect", f"cannot connect to {self.label}: {_first_line(msg)}")

    def check(self) -> None:
        with self._connect(SCHEMA_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")

    # -------------------------------------------------------------------------------- schema
    def schema(self, rows_per_table: int = SAMPLE_ROWS) -> Schema:
        import psycopg

        notes: list[str] = []
        samples: dict[str, list[tuple]] = {}
        with self._connect(SCHEMA_TIMEOUT_S) as conn:
            conn.read_only = True
            try:
                with conn.transaction():
                    found = conn.execute(_PG_TABLES).fetchall()
                    rels = found[:MAX_TABLES]
                    oids = [oid for oid, _ in rels]
                    names = dict(rels)
                    cols: dict[int, list[tuple[str, str]]] = {oid: [] for oid in oids}
                    for rel, col, typ, typtype in conn.execute(_PG_COLUMNS, (oids,)):
                        cols[rel].append((col, pg_type(typ, typtype)))
                    tables = {oid: Table(names[oid], cols[oid]) for oid in oids}
                    for rel, kind, mine, parent, theirs in conn.execute(_PG_KEYS, (oids,)):
                        if kind == "p":
                            tables[rel].primary_key = list(mine)
                        else:
                            tables[rel].foreign_keys.append((list(mine), parent, list(theirs)))
                    for oid, name in rels:
                        try:
                            with conn.transaction():      # a savepoint: one unreadable table costs its rows only
                                cur = conn.execute(f"SELECT * FROM {quote_ident(name, 'postgres')} LIMIT "
                                                   f"{int(rows_per_table)}")
                                samples[name] = cur.fetchall()
                        except psycopg.Error as e:
                            notes.append(f"no sample rows from {name}: {_first_line(e)}")
            except psycopg.errors.QueryCanceled:
                raise DatabaseError("timeout", f"reading the schema of {self.label} took over {SCHEMA_TIMEOUT_S:g} s: "
                                               "the server is overloaded, or the catalog is very large") from None
            except psycopg.Error as e:
                raise DatabaseError("error", f"cannot read the schema of {self.label}: {_first_line(e)}") from None
        if len(found) > MAX_TABLES:
            notes.append(f"{len(found) - MAX_TABLES} more tables left out (the first {MAX_TABLES} are read)")
        return self._schema([tables[oid] for oid in oids], samples, notes)

    # -------------------------------------------------------------------------------- an answer
    def run(self, sql: str, from_dialect: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        import psycopg

        stmt = self._statement(sql, from_dialect).rstrip().rstrip(";")
        start = time.monotonic()
        with self._connect(timeout_s) as conn:
            conn.read_only = True                                 # BEGIN READ ONLY
            try:
                with conn.transaction(), conn.cursor(name="sqlgenie_answer") as cur:   # server-side cursor
                    cur.execute(stmt)
                    rows, size = [], 0
                    while len(rows) <= max_rows and size <= MAX_RESULT_BYTES:
                        batch = cur.fetchmany(min(FETCH_BATCH, max_rows + 1 - len(rows)))
                        if not batch:
                            break
                        rows += batch
                        size += sum(_size(v) for r in batch for v in r)
                        if time.monotonic() - start > timeout_s:
                            raise DatabaseError("timeout", f"stopped after {timeout_s:g} s (time cap) while "
                                                           "fetching rows: ask for fewer rows")
                    columns = [d.name for d in cur.description or []]
            except psycopg.errors.QueryCanceled:
                raise DatabaseError("timeout", f"stopped after {timeout_s:g} s (time cap): {self.label} cancelled "
                                               "the query; ask for something simpler or fewer rows") from None
            except psycopg.errors.ReadOnlySqlTransaction as e:
                raise DatabaseError("denied", f"refused by {self.label}: {_first_line(e)} (answers run in a READ "
                                              "ONLY transaction: nothing is written)") from None
            except psycopg.errors.InsufficientPrivilege as e:
                raise DatabaseError("denied", f"refused by {self.label}: {_first_line(e)}") from None
            except psycopg.errors.OutOfMemory as e:
                raise DatabaseError("memory", f"{self.label} ran out of memory: {_first_line(e)}") from None
            except psycopg.Error as e:
                raise DatabaseError("error", _first_line(e)) from None
        truncated = len(rows) > max_rows or size > MAX_RESULT_BYTES
        return QueryResult(columns, rows[:max_rows], truncated, time.monotonic() - start)


# ------------------------------------------------------------------------------------------------ shared parts
def read_only_statement(sql: str, dialect: str, where: str = "the database") -> str:
    """`sql` if it is one statement that only reads; else a DatabaseError("denied") naming what would write."""
    import sqlglot
    from sqlglot import exp

    sql = (sql or "").strip()
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
        raise DatabaseError("error", f"the answer does not parse as {dialect} SQL: {_first_line(e)}") from None
    if len(trees) != 1:
        raise DatabaseError("denied", f"{len(trees)} statements: one query at a time runs on {where}")
    tree = trees[0]
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
              exp.TruncateTable, exp.Copy, exp.Into, exp.Set, exp.Transaction, exp.Commit, exp.Rollback)
    found = next(iter(tree.find_all(*writes)), None) if isinstance(tree, (exp.Query, exp.Values)) else tree
    if found is not None:
        raise DatabaseError("denied", f"refused before it ran: the answer {_what(found)}; answers run read-only on "
                                      f"{where}")
    if next(iter(tree.find_all(exp.Lock)), None) is not None:
        raise DatabaseError("denied", "refused before it ran: the answer locks rows (FOR UPDATE/SHARE); answers run "
                                      f"read-only on {where}")
    denied = PG_DENIED_FUNCTIONS if dialect == "postgres" else SQLITE_DENIED_FUNCTIONS
    for fn in tree.find_all(exp.Func):
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()
        if name in denied:
            raise DatabaseError("denied", f"refused before it ran: the answer calls {name}(), which changes state or "
                                          f"reaches outside the data; answers run read-only on {where}")
    return sql


_KEYWORDS = {"Insert": "INSERT", "Update": "UPDATE", "Delete": "DELETE", "Merge": "MERGE", "Create": "CREATE",
             "Drop": "DROP", "Alter": "ALTER", "TruncateTable": "TRUNCATE", "Copy": "COPY", "Set": "SET",
             "Transaction": "BEGIN", "Commit": "COMMIT", "Rollback": "ROLLBACK"}


def _what(node) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Into):
        return "creates a table (SELECT INTO)"
    if isinstance(node, exp.Command):
        word = str(node.this).upper()
        return f"is {'an' if word[0] in 'AEIOU' else 'a'} {word} statement, not a query"
    word = _KEYWORDS.get(type(node).__name__, type(node).__name__.upper())
    a = "an" if word[0] in "AEIOU" else "a"
    return f"hides {a} {word} inside the query" if node.parent is not None else f"is {a} {word} statement, not a query"


def transpile(sql: str, read: str, write: str) -> str:
    import sqlglot

    try:
        return ";\n".join(sqlglot.transpile(sql, read=read, write=write))
    except sqlglot.errors.SqlglotError as e:
        raise DatabaseError("error", f"the answer cannot be written for {write}: {_first_line(e)}") from None


def quote_ident(name: str, dialect: str) -> str:
    """A table or column name as SQL writes it: bare when it can be, else in double quotes."""
    plain = r"[a-z_][a-z0-9_]*" if dialect == "postgres" else r"[A-Za-z_][A-Za-z0-9_]*"
    if re.fullmatch(plain, name) and name.upper() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


_RESERVED = {"ALL", "AND", "ANY", "AS", "ASC", "BETWEEN", "BY", "CASE", "CHECK", "COLUMN", "CONSTRAINT", "CREATE",
             "CROSS", "DEFAULT", "DELETE", "DESC", "DISTINCT", "DROP", "ELSE", "END", "EXCEPT", "FALSE", "FOR",
             "FOREIGN", "FROM", "FULL", "GROUP", "HAVING", "IN", "INDEX", "INNER", "INSERT", "INTERSECT", "INTO",
             "IS", "JOIN", "KEY", "LEFT", "LIKE", "LIMIT", "NATURAL", "NOT", "NULL", "OFFSET", "ON", "OR", "ORDER",
             "OUTER", "PRIMARY", "REFERENCES", "RIGHT", "SELECT", "SET", "TABLE", "THEN", "TO", "TRUE", "UNION",
             "UNIQUE", "UPDATE", "USER", "USING", "VALUES", "WHEN", "WHERE", "WITH"}


def create_table(t: Table, dialect: str) -> str:
    """One table's DDL in the training data's format (keys inline when they are one column); names quoted where
    the database needs them quoted."""
    q = lambda n: quote_ident(n, dialect)  # noqa: E731
    single_fk = {fk[0][0]: fk for fk in t.foreign_keys if len(fk[0]) == 1}
    parts = []
    for name, typ in t.columns:
        part = f"{q(name)} {typ}".rstrip()
        if t.primary_key == [name]:
            part += " PRIMARY KEY"
        if name in single_fk:
            _, parent, theirs = single_fk.pop(name)
            part += f" REFERENCES {q(parent)}" + (f"({q(theirs[0])})" if theirs else "")
        parts.append(part)
    if len(t.primary_key) > 1:
        parts.append(f"PRIMARY KEY ({', '.join(map(q, t.primary_key))})")
    for mine, parent, theirs in t.foreign_keys:
        if len(mine) > 1:
            parts.append(f"FOREIGN KEY ({', '.join(map(q, mine))}) REFERENCES {q(parent)}"
                         + (f"({', '.join(map(q, theirs))})" if theirs else ""))
    return f"CREATE TABLE {q(t.name)} ({', '.join(parts)});"


def inserts(table: str, rows: list[tuple], dialect: str) -> str:
    values = ", ".join("(" + ", ".join(literal(v) for v in r) + ")" for r in rows)
    return f"INSERT INTO {quote_ident(table, dialect)} VALUES {values};"


def literal(v) -> str:
    """A value as a SQL literal both SQLite and PostgreSQL read (long text cut to TEXT_CHARS, with …)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else f"'{v}'"
    if isinstance(v, decimal.Decimal):
        return str(v) if v.is_finite() else f"'{v}'"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return f"X'{bytes(v)[:32].hex()}'"
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        text = str(v)
    elif isinstance(v, (dict, list)):
        text = json.dumps(v, default=str)
    else:
        text = str(v)
    if len(text) > TEXT_CHARS:
        text = text[:TEXT_CHARS] + "…"
    return "'" + text.replace("'", "''") + "'"


def _size(v) -> int:
    return len(v) if isinstance(v, (str, bytes, bytearray)) else 8


def _first_line(e) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _url_password(url: str) -> str | None:
    m = re.match(r"^[^:]+://[^:@/]*:([^@/]*)@", url)
    return m.group(1) if m else None
