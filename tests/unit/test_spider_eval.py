"""Spider-format evaluation: execution on the row's own database and the test-suite mode."""
import json
import sqlite3

import pytest

from pipeline.data.loaders import load
from pipeline.evaluate.spider import fuzz_database, score_suite
from pipeline.evaluate.stage import score_predictions


@pytest.fixture
def spider(tmp_path):
    db_dir = tmp_path / "database" / "music"
    db_dir.mkdir(parents=True)
    db = db_dir / "music.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE country (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INT, country_id INT REFERENCES country(id));
        INSERT INTO country VALUES (1, 'France'), (2, 'Peru');
        INSERT INTO singer VALUES (1, 'Ann', 30, 1), (2, 'Bo', 41, 1), (3, 'Cy', 25, 1);
    """)
    conn.commit()
    conn.close()
    (tmp_path / "dev.json").write_text(json.dumps([
        {"db_id": "music", "question": "How many singers are from France?",
         "query": "SELECT count(*) FROM singer WHERE country_id = 1"},
        {"db_id": "music", "question": "Names of singers older than 28?",
         "query": "SELECT name FROM singer WHERE age > 28"},
    ]))
    return tmp_path, db


def test_generated_databases_respect_keys(spider):
    _, db = spider
    original = sqlite3.connect(db)
    fuzzed = fuzz_database(original, seed=1)
    ids = [r[0] for r in fuzzed.execute("SELECT id FROM singer")]
    assert len(ids) == len(set(ids)) > 3
    parents = {r[0] for r in fuzzed.execute("SELECT id FROM country")}
    assert {r[0] for r in fuzzed.execute("SELECT country_id FROM singer")} <= parents
    assert fuzzed.execute("SELECT count(*) FROM singer").fetchone() != original.execute("SELECT count(*) FROM singer").fetchone()


def test_a_query_right_by_coincidence_passes_execution_but_fails_the_test_suite(spider):
    _, db = spider
    gold = "SELECT count(*) FROM singer WHERE country_id = 1"
    lucky = "SELECT count(*) FROM singer"     # every singer happens to be French in the given database
    assert score_suite(str(db), gold, lucky, suite=0).status == "match"
    assert score_suite(str(db), gold, lucky, suite=3).status == "mismatch_suite"
    assert score_suite(str(db), gold, "SELECT count(*) FROM singer WHERE 1 = country_id", suite=3).status == "match"
    assert score_suite(str(db), gold, "DELETE FROM singer", suite=0).status == "pred_denied"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM singer").fetchone() == (3,)  # the file is untouched


def test_spider_rows_score_against_their_databases(spider):
    folder, _ = spider
    rows = [r for r in load(str(folder))]
    assert rows[0]["db_path"].endswith("music.sqlite")
    _, m = score_predictions(rows, [["SELECT count(*) FROM singer"], ["SELECT name FROM singer WHERE age >= 29"]], suite=3)
    assert m["status"] == {"mismatch_suite": 1, "match": 1}
    assert m["breakdown"]["domain:music"] == {"n": 2, "accuracy": 0.5}
