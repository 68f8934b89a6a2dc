"""Your database, PostgreSQL side, on a real server this module starts itself (Debian's initdb + pg_ctl into a
temporary folder, a free port, its unix socket in that folder; stopped in the fixture's teardown): the schema
and sample rows read from it, a query run on it, every write refused (INSERT, UPDATE, DROP, a DELETE hidden in a
CTE before they are sent; a write hidden in a function the database defines by the READ ONLY transaction),
a slow query stopped at the time cap, connection mistakes as one line each, no connection left open."""
from __future__ import annotations

import os
import time

import psycopg
import pytest

from sql.databases import DatabaseError, connect
from sql.sandbox import Sandbox
from sql.validate import schema_columns
from tests.pgserver import PASSWORD, USER, _alive, postgres_server

pytestmark = pytest.mark.integration

SHOP = """
CREATE TABLE customers (id SERIAL PRIMARY KEY, name VARCHAR(60) NOT NULL, country TEXT, signed_up DATE);
CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT, price NUMERIC(8,2), tags TEXT[]);
CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                     sku TEXT REFERENCES products(sku), qty SMALLINT, placed_at TIMESTAMPTZ, paid BOOLEAN);
CREATE TABLE order_notes (order_id BIGINT, line INT, body TEXT, PRIMARY KEY (order_id, line),
                          FOREIGN KEY (order_id) REFERENCES orders(id));
INSERT INTO customers (name, country, signed_up) VALUES ('Ada', 'UK', '2023-01-05'), ('Linus', 'FI', '2023-02-11'),
    ('Grace', 'US', '2023-03-01'), ('Ken', 'US', '2023-04-01'), ('Bo', 'SE', '2023-05-01');
INSERT INTO products VALUES ('A1', 'Kettle', 24.50, '{kitchen,steel}'), ('B2', 'Lamp''s shade', 12.00, NULL);
INSERT INTO orders (customer_id, sku, qty, placed_at, paid) VALUES (1, 'A1', 2, '2024-01-05 10:00+00', true),
    (3, 'B2', 1, '2024-02-01 09:30+00', false), (3, 'A1', 4, '2024-03-01 12:00+00', true);
INSERT INTO order_notes VALUES (1, 1, 'leave at the door');
CREATE VIEW paid_orders AS SELECT id, customer_id, qty FROM orders WHERE paid;
CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'UPDATE customers SET country = ''XX'' RETURNING 1';
"""


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        server.sql("postgres", "CREATE DATABASE shop")
        server.sql("postgres", "CREATE DATABASE nothing")
        server.sql("shop", SHOP)
        yield server
    assert not _alive(server.pid), f"the postmaster {server.pid} outlived its fixture"


def _rows(pg, sql: str) -> list[tuple]:
    with psycopg.connect(host=str(pg.socket_dir), port=pg.port, user=USER, dbname="shop") as c:
        return c.execute(sql).fetchall()


def _ours(pg) -> int:
    """Our connections still open on the server (application_name says they are ours)."""
    return _rows(pg, "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'sqlgenie (read-only)'")[0][0]


def test_the_schema_and_sample_rows_come_from_the_server(pg):
    db = connect(pg.url("shop"), password=PASSWORD)
    s = db.schema()
    assert db.label == f"postgresql://{USER}@127.0.0.1:{pg.port}/shop" and s.dialect == "postgres"
    assert s.tables == ["customers", "products", "orders", "order_notes", "paid_orders"]
    assert s.ddl.splitlines() == [
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT, signed_up DATE);",
        "CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT, price NUMERIC(8,2), tags TEXT);",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), sku TEXT "
        "REFERENCES products(sku), qty INTEGER, placed_at TIMESTAMP, paid BOOLEAN);",
        "CREATE TABLE order_notes (order_id INTEGER REFERENCES orders(id), line INTEGER, body TEXT, "
        "PRIMARY KEY (order_id, line));",
        "CREATE TABLE paid_orders (id INTEGER, customer_id INTEGER, qty INTEGER);",
    ]
    rows = s.rows.splitlines()
    assert rows[0] == "INSERT INTO customers VALUES (1, 'Ada', 'UK', '2023-01-05'), (2, 'Linus', 'FI', '2023-02-11'), " \
                      "(3, 'Grace', 'US', '2023-03-01');"
    assert rows[1] == "INSERT INTO products VALUES ('A1', 'Kettle', 24.50, '[\"kitchen\", \"steel\"]'), " \
                      "('B2', 'Lamp''s shade', 12.00, NULL);"
    assert rows[2].startswith("INSERT INTO orders VALUES (1, 1, 'A1', 2, '2024-01-05 10:00:00+00:00', TRUE), ")
    tables, problems = schema_columns(s.ddl, "sqlite")          # the model's dialect reads it
    assert not problems and set(tables) == set(s.tables)
    with Sandbox.from_context(s.ddl + "\n" + s.rows) as box:    # and its sample rows load for voting
        assert box.query("SELECT COUNT(*) FROM orders").rows == [(3,)]
    assert _ours(pg) == 0


def test_an_answer_runs_on_the_server_written_for_it(pg):
    db = connect(pg.socket_url("shop"))                          # through the unix socket (trust)
    assert db.label == f"postgresql://{USER}@{pg.socket_dir}:{pg.port}/shop"
    r = db.run("SELECT name FROM customers ORDER BY id")
    assert r.rows == _rows(pg, "SELECT name FROM customers ORDER BY id") and len(r.rows) == 5 and r.columns == ["name"]
    r = db.run("SELECT c.name, SUM(o.qty) AS n FROM customers AS c JOIN orders AS o ON o.customer_id = c.id "
               "GROUP BY c.name ORDER BY n DESC", from_dialect="sqlite")
    assert r.rows == [("Grace", 5), ("Ada", 2)]
    # SQLite's || and SUBSTR, written for PostgreSQL by the transpiler
    assert db.run("SELECT SUBSTR(name, 1, 2) || '!' FROM customers WHERE id = 1", from_dialect="sqlite").rows == [
        ("Ad!",)]
    r = db.run("SELECT * FROM generate_series(1, 5000)", max_rows=1000)
    assert len(r.rows) == 1000 and r.truncated
    assert _ours(pg) == 0                                        # each query's connection is closed after it


@pytest.mark.parametrize("sql,says", [
    ("INSERT INTO customers (name) VALUES ('Eve')", "refused before it ran: the answer is an INSERT statement"),
    ("UPDATE customers SET country = 'XX'", "refused before it ran: the answer is an UPDATE statement"),
    ("DROP TABLE orders", "refused before it ran: the answer is a DROP statement"),
    ("WITH gone AS (DELETE FROM order_notes RETURNING *) SELECT COUNT(*) FROM gone",
     "refused before it ran: the answer hides a DELETE inside the query"),
    ("SELECT setval('customers_id_seq', 100)", "refused before it ran: the answer calls setval()"),
    ("SELECT bump()", "cannot execute UPDATE in a read-only transaction"),         # the function writes: the server
    ("SELECT * FROM customers FOR UPDATE", "refused before it ran: the answer locks rows"),
])
def test_every_write_is_refused_and_nothing_changes(pg, sql, says):
    db = connect(pg.url("shop"), password=PASSWORD)
    before = [_rows(pg, f"SELECT * FROM {t} ORDER BY 1") for t in ("customers", "orders", "order_notes")]
    with pytest.raises(DatabaseError) as e:
        db.run(sql)
    assert e.value.kind == "denied" and says in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert [_rows(pg, f"SELECT * FROM {t} ORDER BY 1") for t in ("customers", "orders", "order_notes")] == before
    assert _rows(pg, "SELECT last_value FROM customers_id_seq") == [(5,)]
    assert _ours(pg) == 0


def test_a_slow_query_stops_at_the_time_cap(pg):
    db = connect(pg.url("shop"), password=PASSWORD)
    t0 = time.monotonic()
    with pytest.raises(DatabaseError) as e:
        db.run("SELECT pg_sleep(30)", timeout_s=1.0)
    took = time.monotonic() - t0
    assert e.value.kind == "timeout" and took < 5, took
    assert str(e.value) == (f"stopped after 1 s (time cap): postgresql://{USER}@127.0.0.1:{pg.port}/shop cancelled "
                            "the query; ask for something simpler or fewer rows")
    assert _ours(pg) == 0 and not _rows(pg, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
                                            "AND pid <> pg_backend_pid()")


def test_connection_mistakes_are_one_line_each(pg):
    cases = [
        (pg.url("shop"), "not-the-pw-42", "auth", f"wrong password for user {USER} at 127.0.0.1:{pg.port}"),
        (pg.url("shop"), None, "auth", f"127.0.0.1:{pg.port} asks user {USER} for a password: type it"),
        (pg.url("nowhere"), PASSWORD, "connect", f"no database named nowhere at 127.0.0.1:{pg.port}"),
        (f"postgresql://{USER}@127.0.0.1:{pg.port + 1 if pg.port < 65535 else 1}/shop", PASSWORD, "connect",
         "(connection refused): is the server running"),
    ]
    env = os.environ.pop("PGPASSWORD", None)
    try:
        for url, password, kind, says in cases:
            with pytest.raises(DatabaseError) as e:
                connect(url, password)
            assert e.value.kind == kind and says in str(e.value) and "\n" not in str(e.value), str(e.value)
            assert not password or password not in str(e.value)
    finally:
        if env is not None:
            os.environ["PGPASSWORD"] = env
    with pytest.raises(DatabaseError, match="has no tables") as e:
        connect(pg.url("nothing"), PASSWORD).schema()
    assert e.value.kind == "empty"


def test_the_server_does_not_outlive_its_with():
    with postgres_server() as server:
        pid = server.pid
        assert _alive(pid) and (server.socket_dir / f".s.PGSQL.{server.port}").exists()
    assert not _alive(pid) and not server.root.exists()
