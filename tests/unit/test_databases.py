"""Your database, SQLite side (real files, real SQLite): the schema and sample rows the prompt gets, answers run
on the file read-only and capped, writes refused before they run, one clear line for every bad input; the
read-only check of PostgreSQL answers (the server itself: tests/integration/test_postgres_database.py)."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from serving.text_to_sql import Answer, TextToSql
from sql.databases import DatabaseError, PostgresDatabase, connect, literal, pg_type, read_only_statement
from sql.sandbox import Sandbox
from sql.validate import check, schema_columns

ROOT = Path(__file__).resolve().parents[2]
SHOP = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL, note TEXT);
CREATE TABLE lines (order_id INT, n INT, sku TEXT, PRIMARY KEY (order_id, n), FOREIGN KEY (order_id) REFERENCES orders);
CREATE VIEW uk_customers AS SELECT * FROM customers WHERE country = 'UK';
INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Linus', 'FI'), (3, 'Grace', 'US'), (4, 'Ken', 'US'), (5, 'Bo', 'SE');
INSERT INTO orders VALUES (1, 1, 120.0, 'it''s fragile'), (2, 3, 42.5, NULL), (3, 3, 8.0, 'x');
INSERT INTO lines VALUES (1, 1, 'A1'), (1, 2, 'B2');
"""


@pytest.fixture
def shop(tmp_path) -> Path:
    path = tmp_path / "my shop?#1.db"           # URI characters in the name: opened all the same
    conn = sqlite3.connect(path)
    conn.executescript(SHOP)
    conn.commit()
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_schema_and_sample_rows_are_what_a_user_would_paste(shop):
    db = connect(str(shop))
    s = db.schema(rows_per_table=3)
    assert db.label == f"sqlite:{shop}" and s.dialect == "sqlite" and s.notes == []
    assert s.tables == ["customers", "orders", "lines", "uk_customers"]
    assert s.ddl.splitlines() == [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL, "
        "note TEXT);",
        "CREATE TABLE lines (order_id INT REFERENCES orders, n INT, sku TEXT, PRIMARY KEY (order_id, n));",
        "CREATE TABLE uk_customers (id INTEGER, name TEXT, country TEXT);",
    ]
    assert s.rows.splitlines() == [
        "INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Linus', 'FI'), (3, 'Grace', 'US');",
        "INSERT INTO orders VALUES (1, 1, 120.0, 'it''s fragile'), (2, 3, 42.5, NULL), (3, 3, 8.0, 'x');",
        "INSERT INTO lines VALUES (1, 1, 'A1'), (1, 2, 'B2');",
        "INSERT INTO uk_customers VALUES (1, 'Ada', 'UK');",
    ]
    tables, problems = schema_columns(s.ddl, "sqlite")         # what the prompt and the checker read
    assert not problems and tables["orders"] == {"id", "customer_id", "amount", "note"}
    with Sandbox.from_context(s.ddl + "\n" + s.rows) as box:    # the in-memory copy votes are counted on
        assert box.query("SELECT COUNT(*) FROM customers").rows == [(3,)]


def test_answers_run_on_the_file_itself_read_only_and_capped(shop):
    db = connect(str(shop))
    before = _digest(shop)
    r = db.run("SELECT name FROM customers ORDER BY id")
    assert r.rows == [("Ada",), ("Linus",), ("Grace",), ("Ken",), ("Bo",)] and not r.truncated   # all 5, not 3
    assert db.run("SELECT id FROM customers", max_rows=2).truncated
    assert db.run("SELECT name FROM customers WHERE country = 'US' ORDER BY 1", from_dialect="postgres").rows == [
        ("Grace",), ("Ken",)]
    with pytest.raises(DatabaseError, match=r"stopped after 0.5 s \(time cap\)") as e:
        db.run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c", timeout_s=0.5)
    assert e.value.kind == "timeout"
    with pytest.raises(DatabaseError, match="no such table: nope") as e:
        db.run("SELECT * FROM nope")
    assert e.value.kind == "error"
    assert _digest(shop) == before


@pytest.mark.parametrize("sql,says", [
    ("INSERT INTO customers VALUES (9, 'Eve', 'NO')", "is an INSERT statement, not a query"),
    ("UPDATE customers SET country = 'XX'", "is an UPDATE statement, not a query"),
    ("DELETE FROM customers", "is a DELETE statement, not a query"),
    ("DROP TABLE customers", "is a DROP statement, not a query"),
    ("WITH gone AS (DELETE FROM customers RETURNING id) SELECT COUNT(*) FROM gone", "hides a DELETE inside the query"),
    ("SELECT 1; DELETE FROM customers", "2 statements: one query at a time"),
    ("ATTACH DATABASE '/tmp/x.db' AS x", "not a query"),
    ("PRAGMA writable_schema = 1", "not a query"),
    ("SELECT load_extension('evil')", "calls load_extension()"),
])
def test_a_write_is_refused_before_it_runs(shop, sql, says):
    db = connect(str(shop))
    before, mtime = _digest(shop), shop.stat().st_mtime_ns
    with pytest.raises(DatabaseError, match="refused before it ran|one query at a time") as e:
        db.run(sql)
    assert e.value.kind == "denied" and says in str(e.value) and "\n" not in str(e.value)
    assert _digest(shop) == before and shop.stat().st_mtime_ns == mtime
    assert db.run("SELECT COUNT(*) FROM customers").rows == [(5,)]


def test_the_sandbox_refuses_writes_on_a_file_even_when_asked(shop):
    """The second wall: past the statement check, the file is opened ?mode=ro and its authorizer refuses writes."""
    with Sandbox.on_file(str(shop)) as box:
        with pytest.raises(Exception, match="not authorized|readonly|read-only"):
            box.query("DELETE FROM customers", read_only=False)
    assert connect(str(shop)).run("SELECT COUNT(*) FROM customers").rows == [(5,)]


@pytest.mark.parametrize("sql,ok", [
    ("SELECT name FROM customers", True), ("VALUES (1)", True), ("SELECT 1 UNION SELECT 2", True),
    ("WITH x AS (SELECT 1) SELECT * FROM x", True), ("SELECT pg_sleep(1)", True), ("SELECT bump()", True),
    ("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", False), ("SELECT * INTO t2 FROM t", False),
    ("SELECT * FROM t FOR UPDATE", False), ("SELECT nextval('s')", False), ("SELECT setval('s', 9)", False),
    ("SELECT set_config('transaction_read_only', 'off', false)", False), ("SELECT pg_read_file('/etc/passwd')", False),
    ("SELECT lo_import('/etc/passwd')", False), ("COPY t TO '/tmp/x'", False), ("EXPLAIN ANALYZE DELETE FROM t", False),
    ("BEGIN", False), ("SET statement_timeout = 0", False), ("TRUNCATE t", False),
])
def test_postgres_answers_are_checked_before_they_are_sent(sql, ok):
    """What can be seen in the text is refused here; a write inside a function the database defines (bump()) is
    refused by the server's READ ONLY transaction (the integration test)."""
    if ok:
        assert read_only_statement(sql, "postgres") == sql
    else:
        with pytest.raises(DatabaseError) as e:
            read_only_statement(sql, "postgres", "postgresql://u@h:5432/db")
        assert e.value.kind == "denied" and "refused before it ran" in str(e.value), str(e.value)


@pytest.mark.parametrize("target,kind,says", [
    ("", "url", "no database given"),
    ("/no/such/file.db", "url", "no such file: /no/such/file.db: give the path of a SQLite database file"),
    ("mysql://ann@db:3306/shop", "url", "mysql:// databases are not supported: connect a PostgreSQL URL"),
    ("postgresql://ann@db:port/shop", "url", "port 'port' is not a number"),
    ("postgresql://ann@db/shop?colour=blue", "url", "the URL does not parse (invalid URI query parameter"),
    ("postgresql://ann@127.0.0.1:1/shop", "connect", "nothing answers at 127.0.0.1:1 (connection refused)"),
    ("postgresql://ann@/shop?host=/no/such/dir&port=5999", "connect", "no server listens on the unix socket in "
                                                                      "/no/such/dir"),
])
def test_a_bad_target_is_one_line_naming_the_fix(target, kind, says):
    with pytest.raises(DatabaseError) as e:
        connect(target, password="pw-not-shown")
    assert e.value.kind == kind and says in str(e.value), str(e.value)
    assert "\n" not in str(e.value) and "pw-not-shown" not in str(e.value)


def test_not_a_database_a_folder_and_an_empty_one(tmp_path):
    (tmp_path / "notes.txt").write_text("hello, not a database")
    sqlite3.connect(tmp_path / "empty.db").close()
    for target, says in ((tmp_path / "notes.txt", "is not a SQLite database"), (tmp_path, "is a folder"),
                         (tmp_path / "empty.db", "has no tables")):
        with pytest.raises(DatabaseError, match=says):
            connect(str(target)).schema()
    assert connect(f"sqlite:///{tmp_path / 'empty.db'}").label == f"sqlite:{tmp_path / 'empty.db'}"


def test_the_password_is_never_in_a_label_repr_or_message():
    db = PostgresDatabase.from_url("postgresql://ann:hunter2@db.example:6543/shop")
    assert db.label == "postgresql://ann@db.example:6543/shop" and "hunter2" not in repr(db)
    db = PostgresDatabase.from_url("postgres://ann@db.example/shop", password="hunter2")
    assert db.label == "postgresql://ann@db.example:5432/shop" and "hunter2" not in repr(db) + str(vars(db).get("params"))
    with pytest.raises(DatabaseError) as e:
        connect("postgresql://ann:hunter2@db/shop?colour=blue")
    assert "hunter2" not in str(e.value)


def test_types_and_values_as_the_training_data_writes_them():
    assert [pg_type(t) for t in ("integer", "bigint", "character varying(60)", "double precision", "numeric(8,2)",
                                 "timestamp with time zone", "date", "boolean", "text[]", "jsonb", "uuid")] == [
        "INTEGER", "INTEGER", "TEXT", "REAL", "NUMERIC(8,2)", "TIMESTAMP", "DATE", "BOOLEAN", "TEXT", "JSONB", "UUID"]
    assert pg_type("mood", "e") == "TEXT"
    import datetime
    import decimal
    assert [literal(v) for v in (None, True, 3, 2.5, decimal.Decimal("24.50"), "it's", datetime.date(2024, 1, 5),
                                 b"\x00\xff", ["a", "b"])] == [
        "NULL", "TRUE", "3", "2.5", "24.50", "'it''s'", "'2024-01-05'", "X'00ff'", "'[\"a\", \"b\"]'"]
    assert literal("x" * 200) == "'" + "x" * 80 + "…'"


def test_an_answer_runs_on_the_database_and_says_which(shop):
    """TextToSql's execution step with a database: the rows come from the file (all 5 customers, where the
    sample rows hold 3), the answer names the database; a write is not run and says why."""
    db = connect(str(shop))
    s = db.schema()
    for sql, rows, error in (("SELECT name FROM customers", 5, ""),
                             ("DELETE FROM customers", 0, "is a DELETE statement, not a query")):
        ans = Answer(question="q", raw=sql, sql=sql, check=check(sql, s.ddl, "sqlite"))
        TextToSql._execute_on(ans, db, "sqlite")
        assert ans.database == db.label and len(ans.rows) == rows and error in ans.execution_error
    assert db.run("SELECT COUNT(*) FROM customers").rows == [(5,)]


def test_the_playground_connects_a_tab_and_keeps_the_password_out_of_the_page(shop):
    from app.playground import CONNECT, PASTE, on_connect, on_source

    db, schema, rows, target, execute, status, password = on_connect(None, str(shop), "pw")
    assert db.label == f"sqlite:{shop}" and schema.startswith("CREATE TABLE customers") and "INSERT INTO" in rows
    assert target == "sqlite" and execute["value"] is True and execute["label"] == "Run on the database"
    assert f"**Connected:** `sqlite:{shop}`" in status and password == ""
    db, *_, status, password = on_connect(str(shop), "", "")             # an upload is named by its file
    assert db.label == f"sqlite:{shop.name} (uploaded)"
    db, *_, status, password = on_connect(None, "postgresql://ann@127.0.0.1:1/shop", "hunter2")
    assert db is None and status.startswith("**Not connected:** nothing answers at 127.0.0.1:1")
    assert "hunter2" not in status and password == ""
    assert on_source(PASTE)[0] is None and on_source(CONNECT)[1]["visible"] is True


def test_ask_database_is_one_line_when_the_database_is_wrong(home, tmp_path, shop):
    for args, says in ((["--database", str(tmp_path / "nope.db")], "no such file"),
                       (["--database", str(shop), "--schema", str(shop)], "leave out --schema and --rows")):
        p = subprocess.run([sys.executable, "-m", "app.cli", "ask", *args, "how many customers?"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, SQLGENIE_HOME=str(home)))
        assert p.returncode == 2 and says in p.stderr and "Traceback" not in p.stderr, p.stderr
