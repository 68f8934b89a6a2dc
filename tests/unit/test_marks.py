"""The playground's marks say what they check and, apart, what the result looks like: prose is not marked as
changing data, a constant and a literal the sample rows lack are flagged (sql/result_notes.py)."""
from __future__ import annotations

from sql.result_notes import result_notes
from sql.validate import check

SCHEMA = "CREATE TABLE books (id INTEGER, title TEXT, lang TEXT, pages INTEGER);"
ROWS = "INSERT INTO books VALUES (1, 'Dune', 'English', 412), (2, 'Momo', 'German', 304);"


def _answer(sql: str, rows=None, columns=None):
    from serving.text_to_sql import Answer

    return Answer(question="q", raw=sql, sql=sql, check=check(sql, SCHEMA, "sqlite"), columns=columns or [],
                  rows=rows or [], notes=result_notes(sql, "sqlite", ROWS) if check(sql, SCHEMA).parses else [])


def test_notes_flag_a_constant_and_literals_the_rows_do_not_hold():
    assert result_notes("SELECT 1.00;", "sqlite", ROWS) == [
        "a constant: the query reads no table, so it says nothing about the data"]
    assert result_notes("SELECT title FROM books WHERE lang = 'english'", "sqlite", ROWS) == [
        "'english' is not in the sample rows; 'English' is (letter case)"]
    assert result_notes("SELECT title FROM books WHERE lang IN ('French', 'German')", "sqlite", ROWS) == [
        "'French' appears nowhere in the sample rows"]
    # what is fine says nothing: a value the rows hold, a LIKE pattern, a case-folded comparison, no rows given
    assert result_notes("SELECT title FROM books WHERE lang = 'English' AND title LIKE 'D%'", "sqlite", ROWS) == []
    assert result_notes("SELECT title FROM books WHERE lower(lang) = 'english'", "sqlite", ROWS) == []
    assert result_notes("SELECT title FROM books WHERE lang = 'Klingon'", "sqlite", "") == []
    assert result_notes("the answer is Dune", "sqlite", ROWS) == []


def test_marks_name_what_they_check_and_keep_prose_apart_from_writes():
    from app.playground import marks

    prose = marks(_answer("The book is Dune."))
    assert "syntax ✗" in prose and "no SQL to run" in prose and "changes data" not in prose
    good = marks(_answer("SELECT title FROM books WHERE lang = 'English'", rows=[("Dune",)], columns=["title"]))
    assert good.startswith("**Checks** (well-formed and safe, not whether it answers the question): syntax ✓ · "
                           "names ✓ · read-only ✓")
    assert "**Result**: 1 row" in good and "⚠" not in good
    const = marks(_answer("SELECT 1.00;", rows=[(1.0,)], columns=["1.00"]))
    assert "⚠ a constant" in const
    empty = marks(_answer("SELECT title FROM books WHERE lang = 'english'", rows=[], columns=["title"]))
    assert "**Result**: no rows · ⚠ 'english' is not in the sample rows; 'English' is (letter case)" in empty
    write = marks(_answer("DELETE FROM books"))
    assert "⚠ changes data (DELETE)" in write
