import json

import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from core.errors import DataError
from pipeline import config
from pipeline.data import prepare
from tests.conftest import gretel_row, write_gretel


def _cfg(tok_dir, sources, *extra):
    srcs = "[" + ", ".join("{" + ", ".join(f"{k}: '{v}'" if isinstance(v, str) else f"{k}: {v}" for k, v in s.items()) + "}"
                           for s in sources) + "]"
    return config.load(None, [f"model.tokenizer={tok_dir}", f"data.sources={srcs}", *extra])


def test_bad_rows_are_dropped_with_a_reason_each(tmp_path, home, tiny_tokenizer_dir):
    rows = [gretel_row(i) for i in range(20)]
    rows += [gretel_row(100, sql_prompt=""),                      # missing_field
             gretel_row(3),                                        # duplicate_id
             gretel_row(101, sql="SELEC FROM WHERE ((("),          # unparseable_sql
             gretel_row(103, sql="DROP"),                          # not_a_query (sqlglot's fallback parse only)
             gretel_row(102, sql_context="CREATE TABLE t (a INT); " + "INSERT INTO t VALUES (1); " * 200,
                        sql="SELECT COUNT(*) FROM t;")]                # too_long
    path = write_gretel(tmp_path / "g.parquet", rows)
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.max_seq_len=512", "data.eval_fraction=0"))
    rep = res.report
    assert rep["dropped"] == {"broken_line": 0, "field_too_large": 0, "missing_field": 1, "non_utf8": 0,
                              "wrong_type": 0, "duplicate_id": 1, "unparseable_sql": 1, "not_a_query": 1,
                              "gold_does_not_run": 0, "too_long": 1}
    assert res.train_rows == 20 and rep["sources"]["g.parquet"]["usable"] == 20
    out = res.out_dir
    assert {p.name for p in out.iterdir()} >= {"train.parquet", "report.json", "report.md", "lengths.png"}
    assert json.loads((out / "report.json").read_text())["train_rows"] == 20
    assert "| g.parquet | 25 | 20 | 0 | 0 | 1 | 0 | 0 | 1 | 1 | 1 | 0 | 1 | 20 |" in (out / "report.md").read_text()


def _adds_up(report: dict, source: str) -> dict:
    s = report["sources"][source]
    assert s["rows_in"] == s["usable"] + sum(s["dropped"].values()), s
    return s


def test_broken_jsonl_lines_are_counted_not_lost(tmp_path, home, tiny_tokenizer_dir):
    lines = [json.dumps(gretel_row(i)) for i in range(17)]
    for at, junk in ((3, '{"id": 99, "sql_prompt": "unterminated'), (9, "not json at all"), (15, "[1, 2")):
        lines.insert(at, junk)
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(lines) + "\n")
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    s = _adds_up(res.report, "g.jsonl")
    assert (s["rows_in"], s["usable"], s["dropped"]["broken_line"]) == (20, 17, 3)


def test_csv_unclosed_quote_and_huge_field_are_counted_per_row(tmp_path, home, tiny_tokenizer_dir):
    """An unclosed quote no longer merges the records after it; a 600 KB field drops its row, not the file."""
    import csv
    import io

    rows = [gretel_row(i) for i in range(10)]
    rows[6]["sql_explanation"] = "x" * 600_000
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    lines = buf.getvalue().splitlines(keepends=True)
    lines[3] = lines[3].replace("retail,", 'retail,"unclosed ', 1)      # record 3 opens a quote it never closes
    path = tmp_path / "g.csv"
    path.write_text("".join(lines))
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    s = _adds_up(res.report, "g.csv")
    assert s["rows_in"] == 10 and s["dropped"]["broken_line"] == 1 and s["dropped"]["field_too_large"] == 1
    assert s["usable"] == 8


def test_prompt_length_splits_prompt_and_sql_completion_token_by_token(tmp_path, home, tiny_tokenizer_dir):
    path = write_gretel(tmp_path / "g.jsonl", [gretel_row(i) for i in range(6)])
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    rows = pq.read_table(res.out_dir / "train.parquet").to_pylist()
    assert len(rows) == 6
    for r in rows:
        ids, first = r["input_ids"], r["prompt_length"]
        assert len(ids) == r["length"] and 0 < first < len(ids)
        # everything after the prompt is the SQL and the end of turn, and nothing before it is
        assert tok.decode(ids[first:]) == r["sql"] + "<|im_end|>\n"
        prompt = tok.decode(ids[:first])
        assert prompt.endswith("<|im_start|>assistant\n") and r["question"] in prompt and r["sql"] not in prompt


def test_mixture_weights_and_eval_split(tmp_path, home, tiny_tokenizer_dir):
    a = write_gretel(tmp_path / "a.parquet", [gretel_row(i) for i in range(40)])
    b = write_gretel(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": f"hi {i}"},
                                                          {"role": "assistant", "content": "hello"}]} for i in range(40)])
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(a), "weight": 1.0}, {"path": str(b), "weight": 0.25}],
                           "data.eval_fraction=0"))
    assert res.report["sources"]["a.parquet"]["in_mixture"] == 40
    assert res.report["sources"]["b.jsonl"]["in_mixture"] == 10
    kinds = pq.read_table(res.out_dir / "train.parquet").column("kind").to_pylist()
    assert kinds.count("chat") == 10 and kinds.count("sql") == 40
    # num_rows turns weights into shares; eval_fraction holds rows out
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(a), "weight": 3}, {"path": str(b), "weight": 1}],
                           "data.num_rows=80", "data.eval_fraction=0.1"))
    assert res.report["sources"]["a.parquet"]["in_mixture"] == 60 and res.report["sources"]["b.jsonl"]["in_mixture"] == 20
    assert res.train_rows == 72 and res.eval_rows == 8


def test_empty_and_all_bad_sources_are_clear_errors(tmp_path, home, tiny_tokenizer_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError):
        prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(empty)}]))
    bad = write_gretel(tmp_path / "bad.parquet", [gretel_row(i, sql="") for i in range(3)])
    with pytest.raises(DataError, match="no usable training rows"):
        prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(bad)}]))


def test_a_failed_run_keeps_the_previous_output(tmp_path, home, tiny_tokenizer_dir):
    """The same data config prepared again, failing half way (its file turned to junk): the earlier output
    under that fingerprint is untouched and no half-written folder is left."""
    good = write_gretel(tmp_path / "g.parquet", [gretel_row(i) for i in range(10)])
    cfg = _cfg(tiny_tokenizer_dir, [{"path": str(good)}], "data.eval_fraction=0")
    first = prepare.run(cfg)
    before = (first.out_dir / "train.parquet").read_bytes()
    good.write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        prepare.run(cfg)
    assert (first.out_dir / "train.parquet").read_bytes() == before
    assert not [p for p in first.out_dir.parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


def test_missing_tokenizer_path_is_a_clear_error(tmp_path, home):
    with pytest.raises(DataError, match="does not exist"):
        prepare.run(config.load(None, [f"model.tokenizer={tmp_path}/nope"]))


def test_an_odd_id_type_drops_that_row_with_its_line_not_the_file(tmp_path, home, tiny_tokenizer_dir):
    """`"id": [1]` / `{"a": 1}` in one line of a JSONL whose other ids are ints and strings rejected the whole
    file with no line number; now that row is wrong_type, named by its line, and the rest load."""
    rows = [gretel_row(i) for i in range(12)]
    rows[3]["id"], rows[7]["id"], rows[9]["id"] = [1], {"a": 1}, "row-nine"
    path = write_gretel(tmp_path / "g.jsonl", rows)
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    s = _adds_up(res.report, "g.jsonl")
    assert (s["rows_in"], s["usable"], s["dropped"]["wrong_type"]) == (12, 10, 2)
    assert s["examples"]["wrong_type"] == ["line 4: id is a list, not text or a number",
                                           "line 8: id is a mapping, not text or a number"]
    assert "wrong_type 2 (g.jsonl line 4: id is a list" in res.summary()
    assert "`line 8: id is a mapping, not text or a number`" in (res.out_dir / "report.md").read_text()
    assert "row-nine" in pq.read_table(res.out_dir / "train.parquet").column("id").to_pylist()


def test_gold_sql_that_does_not_run_on_its_context_is_dropped_with_the_error(tmp_path, home, tiny_tokenizer_dir):
    """Gold SQL that parses but fails on the row's own tables was counted usable and trained on."""
    rows = [gretel_row(i) for i in range(10)]
    rows += [gretel_row(20, sql="SELECT nope FROM products;"),                                  # no such column
             gretel_row(21, sql="SELECT COUNT(*) FROM orders;"),                                # no such table
             gretel_row(22, sql="INSERT INTO products VALUES (1, 9);"),                         # breaks the key
             gretel_row(23, sql_context="CREATE TABLE products (id INT PRIMARY KEY, price INT); "
                                        "INSERT INTO products VALUES (1, 5);"),
             gretel_row(24, sql="UPDATE products SET price = 0 WHERE id = 1;", sql_task_type="data manipulation"),
             gretel_row(25, sql="DELETE FROM products WHERE id = 2; SELECT COUNT(*) FROM products;")]
    rows[12]["sql_context"] = rows[13]["sql_context"]
    path = write_gretel(tmp_path / "g.parquet", rows)
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    s = _adds_up(res.report, "g.parquet")
    assert (s["usable"], s["dropped"]["gold_does_not_run"]) == (13, 3), s
    assert s["examples"]["gold_does_not_run"] == [
        "row 11: error: no such column: nope", "row 12: error: no such table: orders",
        "row 13: error: UNIQUE constraint failed: products.id"]
    assert res.report["gold_check"] == "16 rows run, 3 failed"
    assert "gold_does_not_run 3 (g.parquet row 11: error: no such column: nope; " in res.summary()
    kept = pq.read_table(res.out_dir / "train.parquet").column("id").to_pylist()
    assert {"23", "24", "25"} <= set(kept) and not {"20", "21", "22"} & set(kept)


def test_gold_sql_checked_in_worker_processes_gives_the_same_rows(tmp_path, home, tiny_tokenizer_dir, monkeypatch):
    """Big inputs run the gold check in forked workers (one per core): the same rows are dropped, in order."""
    monkeypatch.setattr(prepare, "GOLD_ROWS_PER_WORKER", 2)   # workers for 30 rows (on a machine with 2+ cores)
    rows = [gretel_row(i, sql="SELECT missing FROM products;" if i % 7 == 3 else gretel_row(i)["sql"])
            for i in range(30)]
    path = write_gretel(tmp_path / "g.jsonl", rows)
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0"))
    s = _adds_up(res.report, "g.jsonl")
    assert s["dropped"]["gold_does_not_run"] == 4
    assert s["examples"]["gold_does_not_run"] == [f"line {i + 1}: error: no such column: missing" for i in (3, 10, 17, 24)]


def test_gold_in_another_dialect_is_not_run_on_sqlite(tmp_path, home, tiny_tokenizer_dir):
    rows = [gretel_row(i) for i in range(4)] + [gretel_row(9, sql="SELECT nope FROM products;")]
    path = write_gretel(tmp_path / "g.parquet", rows)
    res = prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}], "data.eval_fraction=0", "data.sql_dialect=postgres"))
    assert res.report["gold_check"] == "skipped: the gold SQL is postgres, not SQLite"
    assert res.train_rows == 5


def test_no_usable_rows_names_where_the_first_bad_ones_are(tmp_path, home, tiny_tokenizer_dir):
    path = write_gretel(tmp_path / "g.jsonl", [gretel_row(i, sql="SELECT x FROM nowhere;") for i in range(3)])
    with pytest.raises(DataError, match="no usable training rows are left after filtering \\(g.jsonl: gold_does_not_run "
                                        "3 \\(first: line 1: error: no such table: nowhere\\)\\)"):
        prepare.run(_cfg(tiny_tokenizer_dir, [{"path": str(path)}]))
