"""The second OOD yardstick (data/ood2): `--split ood2` loads it as `--split ood` loads the first, every gold
query returns rows on its database and runs on the test-suite databases, its README's counts hold, and it
shares no database, table definition or question with data/ood."""
import re
import sqlite3
from collections import Counter

import pytest

from core.errors import DataError
from pipeline.data import ood
from pipeline.evaluate.spider import score_suite
from pipeline.evaluate.stage import load_rows


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_the_ood2_split_loads_and_every_gold_query_returns_rows(home):
    questions = ood.questions("ood2")
    rows = load_rows("ood2", limit=10_000, seed=0)
    assert len(rows) == len(questions) >= 120
    assert {r["domain"] for r in rows} == set(ood.schemas("ood2")) and len(ood.schemas("ood2")) == 12
    for r in rows:
        conn = sqlite3.connect(f"file:{r['db_path']}?mode=ro", uri=True)
        try:
            assert conn.execute(r["sql"]).fetchall(), (r["domain"], r["question"])
        finally:
            conn.close()
        # the gold against itself on the row's database and 3 generated ones: the suite databases build
        assert score_suite(r["db_path"], r["sql"], r["sql"], suite=ood.SUITE_DATABASES).status == "match", r["sql"]


def test_the_ood2_databases_and_counts_are_what_its_readme_says(home):
    questions = ood.questions("ood2")
    by_db = Counter(q["db_id"] for q in questions)
    difficulty = Counter(q["difficulty"] for q in questions)
    assert set(difficulty) <= {"easy", "medium", "hard", "extra"} and min(by_db.values()) >= 10
    readme = (ood.source("ood2") / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"(\d+) questions \((\d+) easy, (\d+) medium, (\d+) hard, (\d+) extra\)", readme)
    assert stated and tuple(map(int, stated.groups())) == (len(questions), difficulty["easy"], difficulty["medium"],
                                                          difficulty["hard"], difficulty["extra"])
    for db_id, script in ood.schemas("ood2").items():
        conn = sqlite3.connect(":memory:")
        conn.executescript(script)
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert 3 <= len(tables) <= 7, db_id
        for t in tables:
            assert 6 <= conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] <= 20, (db_id, t)
            assert any(c[5] for c in conn.execute(f'PRAGMA table_info("{t}")')), f"{db_id}.{t} has no primary key"
        assert any(conn.execute(f'PRAGMA foreign_key_list("{t}")').fetchall() for t in tables), db_id


def test_ood2_shares_no_database_table_or_question_with_ood():
    first, second = ood.schemas("ood"), ood.schemas("ood2")
    assert not set(first) & set(second)

    def tables(scripts: dict[str, str]) -> set[str]:
        return {_norm(s) for text in scripts.values() for s in text.split(";") if "create table" in s.lower()}

    assert not tables(first) & tables(second)
    asked = {_norm(q["question"]) for q in ood.questions("ood")}
    assert not [q["question"] for q in ood.questions("ood2") if _norm(q["question"]) in asked]


def test_an_unknown_yardstick_is_one_clear_error(home):
    with pytest.raises(DataError, match=r"'ood3'.*ood, ood2"):
        ood.folder("ood3")


def test_constrained_decoding_and_repair_leave_every_ood2_gold_possible_and_unchanged():
    """`--constrained` and `--repair` score ood2 fairly: the schema grammar accepts each gold, repair moves nothing."""
    from xgrammar.testing import _is_grammar_accept_string as accepts

    from sql.grammar import schema_grammar
    from sql.repair import repair
    from sql.statements import split_context

    schemas = ood.schemas("ood2")
    rejected = [q["query"] for q in ood.questions("ood2")
                if not accepts(schema_grammar(split_context(schemas[q["db_id"]])[0]), q["query"])]
    moved = [q["query"] for q in ood.questions("ood2") if repair(q["query"], schemas[q["db_id"]]).changes]
    assert not rejected and not moved, (rejected[:3], moved[:3])
