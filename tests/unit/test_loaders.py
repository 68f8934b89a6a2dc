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


def _csv_text(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def test_a_byte_order_mark_or_utf16_text_file_loads(tmp_path):
    """Excel saves CSV as UTF-8 with a BOM (the BOM was read into the first column's name) or as UTF-16."""
    rows = [gretel_row(i) for i in range(3)]
    for name, data in (("bom.csv", _csv_text(rows).encode("utf-8-sig")), ("u16.csv", _csv_text(rows).encode("utf-16")),
                       ("u16.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode("utf-16"))):
        (tmp_path / name).write_bytes(data)
        ds = load(str(tmp_path / name))
        assert ds["bad"] == ["", "", ""] and ds["id"] == ["0", "1", "2"], name
    (tmp_path / "nobom.jsonl").write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode("utf-16-le"))
    with pytest.raises(DataError, match="nobom.jsonl is UTF-16 \\(without a byte-order mark\\): save it as UTF-8"):
        load(str(tmp_path / "nobom.jsonl"))


def test_odd_field_types_are_bad_rows_with_their_line_not_a_failed_file(tmp_path):
    """One `"id": [1]` (or a mapping, or a string among ints) used to reject the whole file with no line number."""
    rows = [gretel_row(i) for i in range(8)]
    rows[2]["id"], rows[4]["id"], rows[5]["id"] = [1], {"a": 1}, "x5"
    rows[6]["sql_prompt"] = ["not", "text"]
    path = write_gretel(tmp_path / "g.jsonl", rows)
    ds = load(str(path))
    assert ds["bad"] == ["", "", "wrong_type", "", "wrong_type", "", "wrong_type", ""]
    assert ds["id"][5] == "x5" and ds["id"][7] == "7"
    assert ds["origin"][2] == "line 3: id is a list, not text or a number"
    assert ds["origin"][4] == "line 5: id is a mapping, not text or a number"
    assert ds["origin"][6] == "line 7: sql_prompt is a list, not text or a number"
    chats = write_gretel(tmp_path / "m.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 4}]},
        {"messages": "hello"}, {"messages": [{"role": "user", "content": "hi"}, "oops"]}])
    ds = load(str(chats))
    assert ds["bad"] == ["", "wrong_type", "wrong_type"]
    assert json.loads(ds["messages_json"][0])[1]["content"] == "4"
    assert ds["origin"][1] == "line 2: messages is text, not a list of {role, content} mappings"
    arr = tmp_path / "g.json"
    arr.write_text(json.dumps([gretel_row(0), gretel_row(1, id=[1])]))
    assert load(str(arr))["origin"] == ["record 1", "record 2: id is a list, not text or a number"]


def test_every_record_keeps_its_fields_whatever_the_first_line_is(tmp_path):
    """The columns were those of the first record: a broken first line rejected the file ("Found: (none)"), and a
    first record without `id` or `domain` silently dropped them from every row."""
    good = [json.dumps(gretel_row(i)) for i in range(4)]
    path = tmp_path / "first_broken.jsonl"
    path.write_text("not json\n" + "\n".join(good) + "\n")
    ds = load(str(path))
    assert ds["bad"] == ["broken_line", "", "", "", ""] and ds["origin"][0] == "line 1"
    first = gretel_row(0)
    del first["id"], first["domain"]
    path = write_gretel(tmp_path / "first_short.jsonl", [first] + [gretel_row(i, domain=f"d{i}") for i in (1, 2)])
    ds = load(str(path))
    assert ds["id"] == ["line 1", "1", "2"] and ds["domain"] == ["", "d1", "d2"] and ds["bad"] == ["", "", ""]


def test_json_text_with_line_separator_characters_is_one_record(tmp_path):
    """U+2028 / U+0085 are legal inside JSON strings; str.splitlines cut such a record into two broken lines."""
    rows = [gretel_row(0), gretel_row(1, sql_prompt="How many\u2028products\u0085cost more than 1?"), gretel_row(2)]
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    ds = load(str(path))
    assert ds["bad"] == ["", "", ""] and "\u2028" in ds["question"][1]
    rows[1]["sql_explanation"] = "one\rtwo\u2029three"
    path = tmp_path / "g.csv"
    path.write_text(_csv_text(rows), encoding="utf-8", newline="")
    ds = load(str(path))
    assert ds["bad"] == ["", "", ""] and ds["origin"] == ["line 2", "line 3", "line 4"]


def test_gzipped_jsonl_is_read(tmp_path):
    import gzip

    path = tmp_path / "g.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(gretel_row(i)) + "\n" for i in range(3)).encode()))
    assert load(str(path))["bad"] == ["", "", ""]


def test_spider_databases_that_are_missing_or_not_databases(tmp_path):
    """A corrupt database file was a traceback; a missing one a bare missing_field. Now each row says which file,
    and a file none of whose databases can be read is one line."""
    for db_id, content in (("concert", None), ("junk", b"junk" * 100)):
        d = tmp_path / "database" / db_id
        d.mkdir(parents=True)
        if content is None:
            conn = sqlite3.connect(d / f"{db_id}.sqlite")
            conn.executescript("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO singer VALUES (1, 'a');")
            conn.close()
        else:
            (d / f"{db_id}.sqlite").write_bytes(content)
    items = [{"db_id": "concert", "question": "How many singers?", "query": "SELECT count(*) FROM singer"},
             {"db_id": "junk", "question": "Q?", "query": "SELECT 1"},
             {"db_id": "nodb", "question": "Q?", "query": "SELECT 1"}]
    (tmp_path / "dev.json").write_text(json.dumps(items))
    ds = load(str(tmp_path))
    assert ds["bad"] == ["", "missing_field", "missing_field"]
    assert ds["origin"][1] == "dev.json item 2: database/junk/junk.sqlite cannot be read: file is not a database"
    assert ds["origin"][2] == "dev.json item 3: database/nodb/nodb.sqlite does not exist"
    (tmp_path / "dev.json").write_text(json.dumps(items[1:]))
    with pytest.raises(DataError, match="dev.json: none of its databases can be read from .*database/junk/junk.sqlite "
                                        "cannot be read: file is not a database, and 1 more"):
        load(str(tmp_path))
