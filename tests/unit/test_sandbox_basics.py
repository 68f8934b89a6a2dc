import pytest

from sql.sandbox import Sandbox, SandboxError

CTX = "CREATE TABLE t (id INT, v INT); INSERT INTO t VALUES (1, 5), (2, 6), (3, 7);"


def test_query_and_row_cap():
    with Sandbox.from_context(CTX, max_rows=2) as box:
        res = box.query("SELECT id FROM t ORDER BY id")
        assert res.rows == [(1,), (2,)] and res.truncated and res.columns == ["id"]


@pytest.mark.parametrize("sql", ["DELETE FROM t", "DROP TABLE t", "INSERT INTO t VALUES (9, 9)", "CREATE TABLE x (a)"])
def test_read_only_refuses_writes_and_keeps_data(sql):
    with Sandbox.from_context(CTX) as box:
        with pytest.raises(SandboxError) as e:
            box.query(sql)
        assert e.value.kind == "denied"
        assert box.query("SELECT count(*) FROM t").rows == [(3,)]


def test_attach_and_pragma_writes_are_refused_even_in_write_mode(tmp_path):
    with Sandbox.from_context(CTX) as box:
        for sql in (f"ATTACH DATABASE '{tmp_path}/x.db' AS x", "PRAGMA journal_mode=WAL", "PRAGMA writable_schema=1"):
            with pytest.raises(SandboxError):
                box.query(sql, read_only=False)
    assert not (tmp_path / "x.db").exists()


def test_runaway_query_is_stopped_at_the_time_cap():
    with Sandbox.from_context(CTX, timeout_s=0.3) as box:
        with pytest.raises(SandboxError) as e:
            box.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
        assert e.value.kind == "timeout"
        assert box.query("SELECT 1").rows == [(1,)]  # usable afterwards


def test_state_of_a_database_with_a_broken_view_does_not_raise():
    with Sandbox.from_context(CTX) as box:
        box.query("CREATE VIEW v AS SELECT nope FROM t", read_only=False)  # SQLite checks views lazily
        state = box.state()
        assert state["v"][0][0] == "error" and len(state["t"]) == 4


@pytest.mark.parametrize("sql", [
    "VACUUM INTO '{tmp}/copy.db'",                       # would write a file
    "SELECT load_extension('{tmp}/evil')",               # would load native code
    "SELECT length(randomblob(500000000))",              # would allocate 500 MB
])
def test_file_writes_extensions_and_memory_bombs_are_refused(tmp_path, sql):
    with Sandbox.from_context(CTX) as box:
        for read_only in (True, False):
            with pytest.raises(SandboxError):
                box.query(sql.format(tmp=tmp_path), read_only=read_only)
    assert not list(tmp_path.iterdir())


def test_huge_results_stop_at_the_row_cap_or_the_time_cap():
    with Sandbox.from_context(CTX, max_rows=50, timeout_s=1.0) as box:
        res = box.query("SELECT a.id FROM t a, t b, t c, t d")   # 81 rows
        assert len(res.rows) == 50 and res.truncated
        with pytest.raises(SandboxError) as e:  # a cross join too large to finish
            box.query("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000) "
                      "SELECT count(*) FROM n a")
        assert e.value.kind == "timeout"
