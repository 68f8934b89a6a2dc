"""SQL validation against a schema, formatting, transpiling; the launcher's computed defaults."""
from __future__ import annotations

import pytest

from sql.validate import check, schema_columns

SCHEMA = """CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, signup_date DATE);
CREATE TABLE orders (id INTEGER, user_id INTEGER, amount REAL);"""


def test_schema_columns():
    tables, problems = schema_columns(SCHEMA)
    assert problems == []
    assert tables == {"users": {"id", "name", "signup_date"}, "orders": {"id", "user_id", "amount"}}


def test_valid_query_formats_and_transpiles():
    r = check("select u.name, sum(o.amount) as total from users u join orders o on o.user_id = u.id "
              "group by u.name order by total desc limit 3", SCHEMA, "sqlite", "tsql")
    assert r.ok, r.errors
    assert r.formatted.startswith("SELECT\n")
    assert "TOP 3" in r.transpiled and "LIMIT" not in r.transpiled
    assert r.tables == ["orders", "users"]


def test_unknown_column_and_table_named_with_suggestion():
    r = check("SELECT nme FROM users", SCHEMA)
    assert not r.ok and not r.names_exist and r.parses and r.read_only
    assert r.errors == ["unknown column nme (line 1, column 10) (did you mean name?)"]
    r = check("SELECT u.amount FROM users u", SCHEMA)
    assert r.errors[0].startswith("unknown column amount") and "a column of orders" in r.errors[0]
    r = check("SELECT * FROM user", SCHEMA)
    assert r.errors[0].startswith("unknown table user (did you mean users?)")


def test_columns_resolve_in_their_own_scope():
    """The case the old checker passed: order_id exists only in orders, which the outer SELECT does not read."""
    r = check("SELECT name FROM users WHERE order_id NOT IN (SELECT id FROM orders)",
              "CREATE TABLE users (id INT, name TEXT); CREATE TABLE orders (id INT, user_id INT, order_id INT);")
    assert not r.names_exist and "unknown column order_id" in r.errors[0] and "a column of orders" in r.errors[0]
    # a derived table's and a CTE's columns are checked too (they no longer switch the checks off)
    assert not check("SELECT t.nope FROM (SELECT COUNT(*) AS n FROM orders) t", SCHEMA).names_exist
    assert not check("WITH b AS (SELECT user_id FROM orders) SELECT b.amount FROM b", SCHEMA).names_exist


def test_prose_is_not_valid_sql_and_writes_are_flagged():
    r = check("create a list with the name and city of each user;", SCHEMA)
    assert not r.parses and not r.ok and "reads like prose" in r.errors[0]
    for sql, word in (("DELETE FROM users;", "DELETE"), ("DROP TABLE users;", "DROP"),
                      ("UPDATE users SET name = 'x';", "UPDATE")):
        r = check(sql, SCHEMA)
        assert r.parses and r.names_exist and not r.read_only and not r.ok, sql
        assert r.statement == word and "throwaway copy" in r.warnings[0]


def test_ctes_aliases_and_subqueries_are_understood():
    sql = ("WITH big AS (SELECT user_id, SUM(amount) AS total FROM orders GROUP BY user_id) "
           "SELECT name, total FROM users JOIN big ON big.user_id = users.id WHERE total > 10 ORDER BY total")
    assert check(sql, SCHEMA).ok
    assert check("SELECT t.n FROM (SELECT COUNT(*) AS n FROM orders) t", SCHEMA).ok


def test_parse_error_has_line_and_column():
    r = check("SELECT name\nFROM users WHERE (id = 1", SCHEMA)
    assert not r.ok and r.errors[0].startswith("does not parse: line 2, column")


def test_empty_sql():
    assert check("", SCHEMA).errors == ["no SQL in the model's answer"]


@pytest.mark.parametrize("target,needle", [("postgres", "CAST"), ("mysql", "`"), ("bigquery", "`")])
def test_transpile_targets(target, needle):
    r = check('SELECT CAST(amount AS INTEGER), "name" FROM orders JOIN users ON users.id = orders.user_id', SCHEMA,
              "sqlite", target)
    assert r.ok and needle in r.transpiled


def test_prometheus_parsing_and_rates():
    from serving.stats import parse_metrics, rates

    text = ('# HELP x\nvllm:generation_tokens_total{engine="0",model_name="m"} 120.0\n'
            'vllm_router_processed_requests_total{worker="http://a:1"} 3\n')
    assert parse_metrics(text) == [("vllm:generation_tokens_total", {"engine": "0", "model_name": "m"}, 120.0),
                                   ("vllm_router_processed_requests_total", {"worker": "http://a:1"}, 3.0)]
    snap = lambda t, g, n: {"t": t, "router": {}, "replicas": {"0": {
        "up": True, "generation_tokens": g, "prompt_tokens": 0, "requests": n, "running": 1, "waiting": 0,
        "e2e_sum": n * 0.5, "e2e_count": n, "ttft_sum": 0, "ttft_count": 0}}}
    r = rates(snap(0, 100, 2), snap(2, 300, 6))
    assert r["replicas"]["0"]["tokens_per_s"] == 100 and r["replicas"]["0"]["requests_per_s"] == 2
    assert r["replicas"]["0"]["latency_s"] == 0.5


def test_a_select_with_nothing_to_select_is_not_valid():
    # what a grammar-constrained model returned when the engine's grammar matcher misread the tokenizer
    r = check("SELECT;", "CREATE TABLE a (x INT);")
    assert not r.ok and "nothing to select" in r.errors[0]
    assert check("SELECT x FROM a;", "CREATE TABLE a (x INT);").ok


@pytest.mark.parametrize("looped", ["SELECT " + "- " * 1200 + "1", "SELECT a FROM t WHERE " + "NOT " * 1200 + "a"])
def test_a_model_looping_on_an_operator_is_invalid_not_a_crash(looped):
    """sqlglot's parser recurses once per unary operator: a base model repeating `- ` or `NOT ` until its
    token limit (seen on the H200 with the base model and 9 candidates a question) used to raise RecursionError
    out of the checker and end the evaluation. Now: invalid, with the reason; repair leaves it alone; scoring
    and voting go on."""
    from pipeline.evaluate.scoring import score
    from sql.repair import repair
    from sql.vote import choose

    ddl = "CREATE TABLE t (a INT);"
    res = check(looped, ddl)
    assert not res.ok and "nested too deeply" in res.errors[0]
    assert repair(looped, ddl).sql == looped
    s = score(ddl + "\nINSERT INTO t VALUES (1);", "SELECT a FROM t", looped)
    assert not s.valid
    pick = choose([looped, "SELECT a FROM t"], ddl + "\nINSERT INTO t VALUES (1);")
    assert pick.sql == "SELECT a FROM t"


def test_the_name_check_does_not_rewrite_the_formatted_query():
    """The check qualifies the parsed query in place (no copy): formatting must come from the query as written."""
    r = check("select name, count(*) as n from users u join orders on u.id = orders.user_id group by name",
              "CREATE TABLE users (id INT, name TEXT); CREATE TABLE orders (id INT, user_id INT);")
    assert r.ok and r.names_exist
    assert "name" in r.formatted and "u.name" not in r.formatted and "users.name" not in r.formatted
    assert r.formatted == check("select name, count(*) as n from users u join orders on u.id = orders.user_id "
                                "group by name").formatted


def test_one_table_name_in_two_schemas_is_checked_against_each():
    """The schema sqlglot resolves names in is built once per schema: a second schema with the same table name
    but other columns must not reuse the first one's."""
    first = check("SELECT email FROM users", "CREATE TABLE users (id INT, email TEXT);")
    second = check("SELECT email FROM users", "CREATE TABLE users (id INT, mail TEXT);")
    assert first.ok and not second.ok and "unknown column email" in second.errors[0] and "mail" in second.errors[0]
    assert check("SELECT email FROM users", "CREATE TABLE users (id INT, email TEXT);").ok
