"""The playground's marks (app/playground.py on_mark -> pipeline/data/feedback.py): a panel's last answer marked
right or wrong is kept with its question, schema, rows, model and deployment, the history's newest row for that
model and question shows the mark, and a wrong mark says whether it will teach anything."""
from __future__ import annotations

from app import playground
from pipeline.data import feedback

ASKED = {"question": "How many books?", "schema": "CREATE TABLE books (id INTEGER, title TEXT);",
         "rows": "INSERT INTO books VALUES (1, 'Dune');", "sql": "SELECT COUNT(*) FROM books;", "model": "ft-1",
         "deployment": "try-1", "dialect": "sqlite"}


def _history():
    return [["How many books?", "ft-1", "SELECT COUNT(*) FROM books;", "ok", "80 ms", ""],
            ["How many books?", "base", "SELECT * FROM books;", "ok", "70 ms", ""],
            ["How many books?", "ft-1", "SELECT 1;", "ok", "90 ms", ""]]


def test_a_mark_is_kept_and_shown_on_the_newest_row_of_that_model(home):
    said, hist, _ = playground.on_mark("right", ASKED, "", "", _history())
    assert said.startswith("Kept: **right**") and "teach its SQL" in said
    assert [row[5] for row in hist] == ["right", "", ""]          # ft-1's newest row only, not base's, not older
    (kept,) = feedback.marks()
    assert (kept.verdict, kept.model, kept.deployment, kept.rows) == ("right", "ft-1", "try-1", ASKED["rows"])
    said, hist, _ = playground.on_mark("wrong", {**ASKED, "model": "base", "sql": "SELECT * FROM books;"}, "", "",
                                       hist)
    assert "trains nothing" in said and [row[5] for row in hist] == ["right", "wrong", ""]
    said, _, _ = playground.on_mark("wrong", {**ASKED, "model": "base"}, "SELECT COUNT(*) FROM books;", "counts",
                                    hist)
    assert "teach the SQL you expected" in said
    assert [m.expected_sql for m in feedback.marks()] == ["", "", "SELECT COUNT(*) FROM books;"]


def test_nothing_to_mark_and_a_mark_that_cannot_be_kept_say_so(home):
    said, hist, _ = playground.on_mark("right", None, "", "", [])
    assert "generate an answer first" in said and hist == []
    said, _, _ = playground.on_mark("right", {**ASKED, "schema": ""}, "", "", _history())
    assert said.startswith("**Not kept:**") and "no schema" in said and not feedback.marks()


def test_an_answer_without_a_deployment_leaves_nothing_to_mark():
    out = playground.answer(None, None, False, None, ASKED["schema"], "", "q?", "sqlite", True, False, 0, 0.7, [])
    assert out[-4:] == [None, None, "", ""] and len(out) == 20


def test_prose_can_be_marked_wrong_with_the_sql_expected_but_never_right(home):
    prose = {**ASKED, "sql": "There are 10 books in total.", "sql_found": False}
    said, _, _ = playground.on_mark("right", prose, "", "", _history())
    assert "cannot be right" in said and not feedback.marks()
    said, _, _ = playground.on_mark("wrong", prose, "SELECT COUNT(*) FROM books;", "", _history())
    assert said.startswith("Kept: **wrong**")
    (kept,) = feedback.marks()
    assert kept.training_sql() == "SELECT COUNT(*) FROM books;" and kept.sql == "There are 10 books in total."
