"""Training data from the browser (the Data page, Streamlit AppTest, real prepare jobs): a Gretel JSONL, a CSV and a
Spider zip (a real SQLite database made here) are stored under <home>/uploads/ as given, previewed and checked by
the prepare stage (per-row drop reasons, the token-length histogram), and "Train on this" opens the New-job form on
the upload; a file of the wrong shape (a missing column, line 3 not JSON, an empty file, a zip without tables.json)
gets its one message and nothing is stored; an upload is removed after a confirmation, its run's prepared data
kept."""
from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from tests.conftest import gretel_row, until

APP = str(Path(__file__).resolve().parents[2] / "app" / "shell.py")


def _session(upload: str | None = None):
    """A new browser session on the Data page (?upload=NAME when given)."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    config.set_option("server.address", "127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if upload:
        at.query_params["upload"] = upload
    return at.switch_page("views/data.py").run()


@pytest.fixture
def dash(home):
    from pipeline.jobs import JobStore

    yield _session()
    store = JobStore(home / "jobs.db")
    for j in store.list():                    # a failed test leaves no check running into a deleted home
        if j.status in ("queued", "running"):
            store.cancel(j.id)


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _upload(at, name: str, data: bytes):
    at.file_uploader[0].upload(name, data).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _checked(at, home: Path):
    """Wait for the upload's check (a real prepare job), then show the page again."""
    from pipeline.jobs import JobStore

    store = JobStore(home / "jobs.db")
    job = until(lambda: [j for j in store.list() if j.kind == "prepare"] or None, 30, "the check job")[0]
    done = until(lambda: store.get(job.id).status in ("succeeded", "failed") and store.get(job.id), 240,
                 "the check to end")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return done


def _metric(at, label: str):
    return next(m.value for m in at.metric if m.label == label)


def _stored(home: Path) -> list[str]:
    root = home / "uploads"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_a_gretel_jsonl_is_stored_previewed_checked_and_opens_a_train_form(dash, home):
    rows = [gretel_row(i) for i in range(12)]
    rows[3]["sql"] = "SELECT FROM WHERE ;"                                  # does not parse
    rows[5]["sql"] = "SELECT price FROM nowhere;"                           # does not run on its own schema
    rows[7] = gretel_row(6)                                                 # id 6 again
    at = _upload(dash, "shop questions.jsonl", _jsonl(rows))
    assert _stored(home) == ["shop-questions"]
    up = home / "uploads" / "shop-questions"
    assert (up / "shop questions.jsonl").read_bytes() == _jsonl(rows)      # the original, as given
    assert at.query_params["upload"] == "shop-questions"
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["where", "question", "schema", "sql"] and len(preview) == 12
    assert preview["schema"][0] == "CREATE TABLE products (id INT, price INT);"   # the INSERTs are sample rows
    assert any("12 rows stored" in s.value for s in at.success)

    job = _checked(at, home)
    assert job.status == "succeeded", job.error
    log = Path(job.log_path).read_text()                                   # what the progress bar was drawn from
    assert "prepare: 3/8 [running the gold SQL on its own schema]" in log and "prepare: 8/8 [done]" in log
    assert _metric(at, "rows in") == "12" and _metric(at, "usable") == "9" and _metric(at, "dropped") == "3"
    reasons, dropped = at.dataframe[1].value, at.dataframe[2].value
    assert dict(zip(reasons["reason"], reasons["rows"])) == {"duplicate_id": 1, "unparseable_sql": 1,
                                                             "gold_does_not_run": 1}
    where = dict(zip(dropped["reason"], dropped["where"]))
    assert where["unparseable_sql"] == "line 4" and where["duplicate_id"] == "line 8"
    assert where["gold_does_not_run"].startswith("line 6: ") and "nowhere" in where["gold_does_not_run"]
    assert at.image                                                        # the token-length histogram
    link = next(p for p in at.page_link if p.value.startswith("Train on this"))
    assert "upload=shop-questions" in str(link.proto)

    again = _session("shop-questions")                                      # a reload shows the upload and its report
    assert _metric(again, "usable") == "9" and len(again.dataframe[2].value) == 3

    at.switch_page("views/new_job.py")
    at.query_params["upload"] = "shop-questions"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert next(t for t in at.text_input if t.label == "name").value == "shop-questions"
    assert any("Training on the upload" in i.value for i in at.info)
    yaml_view = next(t.value for t in at.text_area if "sources" in t.value)
    assert f"path: {up / 'shop questions.jsonl'}" in yaml_view
    assert not next(b for b in at.button if b.label == "Submit").disabled


def test_a_csv_is_stored_and_checked(dash, home):
    import csv

    buf = io.StringIO()
    rows = [gretel_row(i) for i in range(4)]
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    at = _upload(dash, "Quarterly.csv", buf.getvalue().encode())
    assert _stored(home) == ["Quarterly"]
    assert at.dataframe[0].value["question"][1] == "How many products cost more than 1?"
    assert _checked(at, home).status == "succeeded"
    assert _metric(at, "rows in") == "4" and _metric(at, "dropped") == "0"


def _spider_zip(tmp: Path, folder: str = "mini", tables: bool = True) -> bytes:
    db = tmp / "shop.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
                      "INSERT INTO products VALUES (1, 'pen', 2.5), (2, 'book', 12.0), (3, 'lamp', 30.0);")
    con.commit()
    con.close()
    questions = [{"db_id": "shop", "question": "How many products are there?", "query": "SELECT count(*) FROM products"},
                 {"db_id": "shop", "question": "Name the cheapest product.",
                  "query": "SELECT name FROM products ORDER BY price LIMIT 1"},
                 {"db_id": "shop", "question": "What is the colour of the pen?",
                  "query": "SELECT colour FROM products WHERE name = 'pen'"}]      # no such column in the database
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        if tables:
            z.writestr(f"{folder}/tables.json", json.dumps([{"db_id": "shop", "table_names": ["products"]}]))
        z.writestr(f"{folder}/train_spider.json", json.dumps(questions))
        z.write(db, f"{folder}/database/shop/shop.sqlite")
    return buf.getvalue()


def test_a_spider_zip_is_unpacked_and_its_gold_sql_runs_on_its_database(dash, home, tmp_path):
    at = _upload(dash, "mini.zip", _spider_zip(tmp_path))
    up = home / "uploads" / "mini"
    assert (up / "mini.zip").is_file() and (up / "mini" / "database" / "shop" / "shop.sqlite").is_file()
    preview = at.dataframe[0].value
    assert preview["where"][0] == "train_spider.json item 1"
    assert preview["schema"][0].startswith("CREATE TABLE products")             # read from the database
    assert _checked(at, home).status == "succeeded"
    assert _metric(at, "rows in") == "3" and _metric(at, "usable") == "2"
    dropped = at.dataframe[2].value
    assert list(dropped["reason"]) == ["gold_does_not_run"]
    assert dropped["where"][0].startswith("train_spider.json item 3: ") and "colour" in dropped["where"][0]


@pytest.mark.parametrize("name,data,says", [
    ("nocontext.csv", b"sql_prompt,sql\nHow many?,SELECT 1\n", 'the header (line 1) has no "sql_context" column'),
    ("broken.jsonl", None, "line 3 is not JSON"),
    ("empty.jsonl", b"", "empty.jsonl is empty"),
    ("notables.zip", None, "no tables.json in the zip"),
])
def test_a_file_of_the_wrong_shape_gets_one_message_and_nothing_is_stored(dash, home, tmp_path, name, data, says):
    if name == "broken.jsonl":
        good = _jsonl([gretel_row(1), gretel_row(2)])
        data = good + b'{"sql_prompt": "How many?", "sql_context": "CREATE TABLE t (a INT);",\n' + _jsonl([gretel_row(4)])
    elif name == "notables.zip":
        data = _spider_zip(tmp_path, tables=False)
    at = _upload(dash, name, data)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and says in errors[0], errors
    assert "Not stored" in errors[0] and ("e.g." in errors[0] or "A Spider dataset zip holds" in errors[0])
    assert _stored(home) == []                                    # not even a staging folder
    assert not at.dataframe and not at.success
    at.run()                                                      # the same file is not read again, the message stays
    assert [e.value for e in at.error] == errors and _stored(home) == []


def test_two_uploads_of_one_name_never_overwrite_and_removal_keeps_a_runs_prepared_data(dash, home):
    from pipeline import config, runs
    from pipeline.data import uploads

    at = _upload(dash, "q.jsonl", _jsonl([gretel_row(1), gretel_row(2)]))
    _checked(at, home)
    first = uploads.get("q")
    at = _upload(at, "q.jsonl", _jsonl([gretel_row(3)]))
    names = _stored(home)
    assert len(names) == 2 and "q" in names and next(n for n in names if n != "q").startswith("q-")
    assert uploads.get("q").rows == 2                               # the first is untouched

    cfg = config.loads(json.dumps(uploads.train_tree(first, {"name": "x"})), "t")
    runs.new_run(cfg)                                               # a run trained on the first upload
    prepared = Path(first.check["prepared"])
    assert prepared.is_dir()
    at.query_params["upload"] = "q"
    at.run()
    next(b for b in at.button if b.key == "remove:q").click().run()
    assert any("Runs trained on it keep their prepared data" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Yes, remove q").click().run()
    assert "q" not in _stored(home) and len(_stored(home)) == 1
    assert prepared.is_dir()                                        # the run's prepared data stays
    assert any("prepared data stays" in s.value for s in at.success)


def test_marks_from_the_playground_become_an_upload_that_is_checked_like_any(home):
    """The Data page counts the playground's marks and turns those that can train into an upload of Gretel rows
    (a right answer's SQL, the expected SQL of a wrong one; the wrong answer without it trains nothing), checked
    by a real prepare job."""
    from pipeline.data import feedback

    schema, rows = "CREATE TABLE books (id INTEGER, title TEXT, year INTEGER);", "INSERT INTO books VALUES (1, 'Dune', 1965);"
    feedback.record(feedback.Mark(question="Books after 1900?", schema=schema, rows=rows, verdict="right",
                                  sql="SELECT title FROM books WHERE year > 1900;"))
    feedback.record(feedback.Mark(question="How many books?", schema=schema, rows=rows, verdict="wrong",
                                  sql="SELECT * FROM books;", expected_sql="SELECT COUNT(*) FROM books;"))
    feedback.record(feedback.Mark(question="Oldest?", schema=schema, rows=rows, verdict="wrong", sql="SELECT 1;"))
    at = _session()
    assert any("3 marks: 1 right, 2 wrong (1 of them with the SQL that was expected). 2 can train" in m.value
               for m in at.markdown)
    at.button(key="marks:upload").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (name,) = _stored(home)
    assert name.startswith("playground-marks-") and at.query_params["upload"] == name
    job = _checked(at, home)
    assert job.status == "succeeded", job.error
    assert _metric(at, "rows in") == "2" and _metric(at, "usable") == "2"
    stored = next((home / "uploads" / name).glob("*.jsonl")).read_text()
    assert "SELECT COUNT(*) FROM books;" in stored and "SELECT * FROM books" not in stored
