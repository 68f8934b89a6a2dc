"""The error kinds of an evaluation's wrong rows (pipeline/evaluate/error_kinds.py): each kind from a row built to
have it, the first-that-fits order, counts and the table."""
from pipeline.evaluate.error_kinds import KINDS, kinds_of, table, taxonomy

GOLD = "SELECT title FROM books WHERE language = 'English' ORDER BY year DESC"
JOIN = "SELECT a.name, COUNT(*) FROM authors a JOIN books b ON b.author_id = a.author_id GROUP BY a.name"


def _row(pred, gold=GOLD, status="mismatch", runs=True, valid=True, error=None):
    return {"pred": pred, "gold": gold, "status": status, "runs": runs, "valid": valid, "error": error}


def test_each_kind_from_a_row_that_has_it():
    assert kinds_of(_row(GOLD, status="match")) == []
    assert kinds_of(_row("The titles are listed below.", valid=False, runs=False)) == ["no_sql"]
    assert kinds_of(_row("SELECT titel FROM books", runs=False, status="pred_error",
                         error="no such column: titel")) == ["unknown_column"]
    assert kinds_of(_row("SELECT title FROM book", runs=False, status="pred_error",
                         error="no such table: book")) == ["unknown_table"]
    assert kinds_of(_row("SELECT title FROM books LIMIT 'x'", runs=False, status="pred_error",
                         error="datatype mismatch")) == ["other_error"]
    # a one-table question answered through a join
    assert kinds_of(_row("SELECT b.title FROM books b JOIN authors a ON a.author_id = b.author_id "
                         "WHERE b.language = 'English' ORDER BY b.year DESC"))[0] == "wrong_table"
    assert kinds_of(_row("SELECT a.name, COUNT(*) FROM authors a JOIN books b ON b.book_id = a.author_id "
                         "GROUP BY a.name", gold=JOIN)) == ["wrong_join"]
    assert kinds_of(_row("SELECT title, CASE WHEN year > 2000 THEN 'new' END FROM books WHERE language = 'English' "
                         "ORDER BY year DESC"))[0] == "unasked_construct"
    lowered = kinds_of(_row("SELECT title FROM books WHERE language = 'english' ORDER BY year DESC"))
    assert lowered == ["wrong_literal", "literal_case"]
    assert kinds_of(_row("SELECT a.name, SUM(b.pages) FROM authors a JOIN books b ON b.author_id = a.author_id "
                         "GROUP BY a.name", gold=JOIN))[0] == "wrong_aggregate"
    assert kinds_of(_row("SELECT title FROM books WHERE publisher = 'English' ORDER BY year DESC")) == ["wrong_column"]
    assert kinds_of(_row("SELECT title FROM books WHERE language = 'English' ORDER BY year")) == ["other_mismatch"]
    # an answer nested too deeply for sqlglot (seen from a looping fine-tune): counted, not a crash of the evaluation
    deep = "SELECT " + "(" * 3000 + "1" + ")" * 3000
    assert kinds_of(_row(deep)) == ["other_mismatch"]
    assert kinds_of(_row(deep, runs=False, status="pred_error", error="parser stack overflow")) == ["no_sql"]


def test_counts_and_table():
    rows = [_row(GOLD, status="match"), _row("nothing", valid=False, runs=False),
            _row("SELECT title FROM books WHERE language = 'english' ORDER BY year DESC"),
            _row("SELECT title FROM books WHERE language = 'english' ORDER BY year DESC"),
            {**_row("x"), "status": "unscorable"}]
    t = taxonomy(rows)
    assert (t["rows"], t["right"], t["wrong"]) == (5, 1, 3)
    assert t["kind"] == {"no_sql": 1, "wrong_literal": 2} and t["any"]["literal_case"] == 2
    md = table({"before": t, "after": taxonomy(rows[:1])})
    assert md.count("\n| ") == len(KINDS) + 2
    assert "| wrong_literal | 2 (67%) | 0 (0%) |" in md and "| **right** | 1 of 5 | 1 of 1 |" in md


def test_compare_report_shows_both_evaluations_kinds(tmp_path):
    import json

    from pipeline.evaluate import report

    def folder(name, rows):
        d = tmp_path / name
        d.mkdir()
        right = sum(r["status"] == "match" for r in rows) / len(rows)
        d.joinpath("metrics.json").write_text(json.dumps({
            "label": name, "execution_accuracy": right, "valid_sql_rate": 1.0, "exact_match": 0.0, "scored": len(rows),
            "breakdown": {"sql_complexity:basic SQL": {"n": len(rows), "accuracy": right}}}))
        d.joinpath("rows.jsonl").write_text("".join(json.dumps({**r, "question": "q", "sql_complexity": "basic SQL"})
                                                    + "\n" for r in rows))
        return d

    before = folder("before", [_row("SELECT title FROM books WHERE language = 'english' ORDER BY year DESC")] * 2)
    after = folder("after", [_row(GOLD, status="match"), _row("no", valid=False, runs=False, status="pred_error")])
    md = report.compare(before, after).read_text()
    assert "## Why the wrong answers are wrong" in md
    assert "| wrong_literal | 2 (100%) | 0 (0%) |" in md and "| no_sql | 0 (0%) | 1 (100%) |" in md


def test_a_damaged_evaluation_is_named_on_the_models_page_not_a_crash(home, tmp_path):
    from app.views.models import _eval_line

    d = tmp_path / "cpu-finetune+repair-1"
    d.mkdir()
    (d / "metrics.json").write_bytes(b'{"label": "x", "execution_ac')
    line = _eval_line(d)
    assert line.startswith("cpu-finetune+repair-1: unreadable (") and "run the evaluation again" in line
