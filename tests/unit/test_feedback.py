"""Marks from the playground (pipeline/data/feedback.py): kept one line each under a lock (two tabs at once lose
none), refused with the reason when they could train nothing, and exported as Gretel rows that the real loader
reads and whose SQL runs on its own schema and rows: the feedback loop into the next fine-tune."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.errors import DataError
from pipeline.data import feedback

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, author TEXT, year INTEGER);"
ROWS = "INSERT INTO books VALUES (1, 'Dune', 'Herbert', 1965), (2, 'Emma', 'Austen', 1815);"


def _mark(**over) -> feedback.Mark:
    base = dict(question="Which books came out after 1900?", schema=SCHEMA, rows=ROWS,
                sql="SELECT title FROM books WHERE year > 1900;", verdict="right", model="ft-1", deployment="try-1")
    base.update(over)
    return feedback.Mark(**base)


def test_marks_are_kept_and_refused_with_the_reason(home):
    feedback.record(_mark())
    feedback.record(_mark(verdict="wrong", sql="SELECT * FROM books;", expected_sql="SELECT COUNT(*) FROM books;",
                          question="How many books are there?"))
    feedback.record(_mark(verdict="wrong", sql="SELECT author FROM books;", question="Oldest book?"))
    for bad, says in ((dict(verdict="maybe"), "mark an answer right or wrong"), (dict(sql="  "), "no answer"),
                      (dict(question=""), "no question"), (dict(schema=""), "no schema")):
        with pytest.raises(DataError, match=says):
            feedback.record(_mark(**bad))
    kept = feedback.marks()
    assert [m.verdict for m in kept] == ["right", "wrong", "wrong"] and kept[1].expected_sql.startswith("SELECT COUNT")
    feedback.marks_path().write_text(feedback.marks_path().read_text() + "{cut by a kill\n")
    assert len(feedback.marks()) == 3                       # a damaged line is skipped, never the file


def test_two_tabs_marking_at_once_lose_nothing(home):
    def mark_many(tab):
        for i in range(25):
            feedback.record(_mark(question=f"tab {tab} question {i}?"))
    threads = [threading.Thread(target=mark_many, args=(t,)) for t in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    lines = feedback.marks_path().read_text().splitlines()
    assert len(lines) == 50 and all(json.loads(line)["verdict"] == "right" for line in lines)


def test_export_gives_gretel_rows_the_loader_reads_and_that_run(home, tmp_path):
    from pipeline.data.loaders import load
    from sql.sandbox import Sandbox

    with pytest.raises(DataError, match="no mark can train anything yet"):
        feedback.export(tmp_path / "none.jsonl")
    feedback.record(_mark())
    feedback.record(_mark(verdict="wrong", sql="SELECT * FROM books;", expected_sql="SELECT COUNT(*) FROM books;",
                          question="How many books are there?"))
    feedback.record(_mark(verdict="wrong", sql="SELECT author FROM books;", question="Oldest book?"))
    n, left = feedback.export(tmp_path / "fb.jsonl")
    assert n == 2 and left == {"wrong, with no expected SQL": 1}
    ds = load(str(tmp_path / "fb.jsonl"))
    rows = [r for r in ds if not r["bad"]]
    assert len(rows) == 2 and {r["question"] for r in rows} == {"Which books came out after 1900?",
                                                                "How many books are there?"}
    for r in rows:                                        # the SQL a row teaches runs on its own schema + rows
        with Sandbox() as box:
            box.load(r["schema"] + "\n" + r["sample_data"])
            assert box.query(r["sql"]).rows
    assert "SELECT * FROM books" not in (tmp_path / "fb.jsonl").read_text()     # the wrong answer trains nothing


def test_the_command_lists_and_exports(home, tmp_path):
    feedback.record(_mark())
    env = dict(os.environ, SQLGENIE_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "app.cli", "feedback", "list"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "right" in out.stdout and "Which books came out after 1900?" in out.stdout
    out = subprocess.run([sys.executable, "-m", "app.cli", "feedback", "export", str(tmp_path / "f.jsonl")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "1 training row(s)" in out.stdout and (tmp_path / "f.jsonl").is_file()
    out = subprocess.run([sys.executable, "-m", "app.cli", "feedback", "export"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "needs a file to write" in out.stderr + out.stdout
