import json
import sqlite3

import pytest

from core.errors import DataError
from pipeline.config import SourceConfig
from pipeline.data.loaders import Example, load
from sql.statements import split_context, split_statements
from tests.conftest import gretel_row, write_gretel


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_gretel_formats_load_to_canonical_rows(tmp_path, suffix):
    path = write_gretel(tmp_path / f"g{suffix}", [gretel_row(i) for i in range(3)])
    ds = load(str(path))
    assert len(ds) == 3
    r = ds[1]
    assert r["kind"] == "sql" and r["bad"] == ""
    assert r["question"] == "How many products cost more than 1?"
    assert r["schema"] == "CREATE TABLE products (id INT, price INT);"
    assert r["sample_data"].startswith("INSERT INTO products")
    ex = Example.from_row(r)
    assert ex.sql.endswith("price > 1;") and ex.sql_complexity == "basic SQL"


def test_wrong_columns_name_file_found_and_expected(tmp_path):
    path = write_gretel(tmp_path / "x.parquet", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as e:
        load(str(path))
    msg = str(e.value)
    assert str(path) in msg and "question, answer" in msg and "sql_prompt" in msg


def test_forced_format_with_wrong_columns(tmp_path):
    path = write_gretel(tmp_path / "x.jsonl", [{"prompt": "p", "completion": "c"}])
    with pytest.raises(DataError, match="wrong columns for the gretel format"):
        load(SourceConfig(path=str(path), format="gretel"))


def test_unreadable_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="broken.parquet: cannot be read as parquet"):
        load(str(path))
    with pytest.raises(DataError, match="no such file"):
        load(str(tmp_path / "missing.parquet"))


def test_non_utf8_and_empty_fields_are_marked_not_fatal(tmp_path):
    good = json.dumps(gretel_row(1)).encode()
    bad = json.dumps(gretel_row(2, sql_prompt="caf\u00e9 PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"\xff\xfe")
    empty = json.dumps(gretel_row(3, sql="  ")).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([good, bad, empty]) + b"\n")
    ds = load(str(path))
    assert ds["bad"] == ["", "non_utf8", "missing_field"]


def test_split_statements_respects_quotes_and_comments():
    sql = "CREATE TABLE t (a TEXT); -- note; here\nINSERT INTO t VALUES ('a;b''c'); /* x; */ SELECT 1"
    assert split_statements(sql) == ["CREATE TABLE t (a TEXT);", "INSERT INTO t VALUES ('a;b''c');", "SELECT 1;"]
    schema, data = split_context(sql)
    assert schema.startswith("CREATE TABLE") and "SELECT 1;" in schema
    assert data == "INSERT INTO t VALUES ('a;b''c');"


def test_spider_folder(tmp_path):
    db_dir = tmp_path / "database" / "concert"
    db_dir.mkdir(parents=True)
    conn = sqlite3.connect(db_dir / "concert.sqlite")
    conn.executescript("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INT);"
                       "INSERT INTO singer VALUES (1, 'Ann', 30), (2, 'O''Neil', 41), (3, 'Bo', 25), (4, 'Cy', 60);")
    conn.commit()
    conn.close()
    (tmp_path / "tables.json").write_text("[]")
    (tmp_path / "dev.json").write_text(json.dumps([
        {"db_id": "concert", "question": "How many singers?", "query": "SELECT count(*) FROM singer"},
        {"db_id": "missing_db", "question": "Q?", "query": "SELECT 1"},
    ]))
    ds = load(str(tmp_path))
    assert len(ds) == 2
    r = ds[0]
    assert r["schema"].startswith("CREATE TABLE singer") and r["domain"] == "concert"
    assert r["sample_data"].count("INSERT") == 3 and "O''Neil" in r["sample_data"]
    assert ds[1]["bad"] == "missing_field"  # its database is not there: no schema


def test_spider_questions_with_wrong_keys(tmp_path):
    (tmp_path / "database").mkdir()
    (tmp_path / "dev.json").write_text(json.dumps([{"q": "x"}]))
    with pytest.raises(DataError, match="db_id, question, query"):
        load(str(tmp_path))


def test_messages_and_sharegpt_and_prompt_completion(tmp_path):
    msgs = write_gretel(tmp_path / "m.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "no answer"}]},
    ])
    ds = load(str(msgs))
    assert ds["kind"] == ["chat", "chat"] and ds["bad"] == ["", "missing_field"]
    share = write_gretel(tmp_path / "s.jsonl", [{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}])
    assert json.loads(load(str(share))[0]["messages_json"])[1] == {"role": "assistant", "content": "b"}
    pc = write_gretel(tmp_path / "p.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    assert json.loads(load(str(pc))[0]["messages_json"])[0]["content"] == "2+2?"


def test_bundled_splits_load():
    assert len(load("bundled:test")) >= 1000
    with pytest.raises(DataError, match="bundled split"):
        load("bundled:nope")
