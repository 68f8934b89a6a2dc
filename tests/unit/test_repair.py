"""sql/repair.py: a column read through the wrong table alias is moved to the one table in scope that has it; a
column no table in scope has brings its table in through the one shortest foreign-key path; a broken ON gets the
one key between its tables; anything ambiguous, correlated or unparseable is left as it was. Checked by running
the result in SQLite."""
from __future__ import annotations

import sqlite3

import pytest

from pipeline.evaluate.stage import score_predictions
from sql.joins import ForeignKeys
from sql.repair import repair as requalify

DDL = ("CREATE TABLE orgs (org_id INTEGER PRIMARY KEY, login TEXT);\n"
       "CREATE TABLE repos (repo_id INTEGER PRIMARY KEY, org_id INTEGER REFERENCES orgs(org_id), name TEXT, "
       "stars INTEGER);\n"
       "CREATE TABLE members (repo_id INTEGER REFERENCES repos, user_id INTEGER, name TEXT);")
ROWS = ("INSERT INTO orgs VALUES (1, 'acme'), (2, 'zeta');\n"
        "INSERT INTO repos VALUES (10, 1, 'rocket', 50), (11, 1, 'anvil', 7), (12, 2, 'zed', 3);\n"
        "INSERT INTO members VALUES (10, 100, 'ann'), (11, 101, 'bob'), (12, 102, 'cy');")
WRONG = ("SELECT g.login, SUM(v.stars) AS s FROM orgs AS g JOIN repos AS e ON e.org_id = g.org_id "
         "JOIN members AS v ON v.repo_id = e.repo_id GROUP BY g.login ORDER BY s DESC;")


def _run(sql: str) -> list[tuple]:
    db = sqlite3.connect(":memory:")
    db.executescript(DDL + "\n" + ROWS)
    return db.execute(sql).fetchall()


def _fails(sql: str, error: str) -> None:
    with pytest.raises(sqlite3.OperationalError, match=error):
        _run(sql)


def test_a_column_read_through_the_wrong_alias_moves_to_the_table_that_has_it():
    _fails(WRONG, "no such column: v.stars")
    fixed = requalify(WRONG, DDL)
    assert fixed.changes == ["v.stars -> e.stars"]
    assert _run(fixed.sql) == [("acme", 57), ("zeta", 3)]


def test_ambiguous_correlated_or_unparseable_queries_are_left_alone():
    ambiguous = "SELECT r.name FROM orgs AS r JOIN members AS m ON 1 = 1 JOIN repos AS p ON p.repo_id = m.repo_id;"
    assert requalify(ambiguous, DDL).changes == []   # orgs has no name; repos and members both do: no guess
    correlated = "SELECT o.login FROM orgs o WHERE EXISTS (SELECT 1 FROM repos r WHERE r.login = o.login);"
    assert requalify(correlated, DDL).sql == correlated
    assert requalify("SELECT FROM WHERE (", DDL).sql == "SELECT FROM WHERE ("
    right = "SELECT e.name FROM repos AS e WHERE e.stars > 5;"
    assert requalify(right, DDL).sql == right


def test_evaluation_with_repair_scores_the_repaired_query_and_records_the_move():
    row = {"id": "r1", "question": "stars per org", "schema": DDL, "sample_data": ROWS, "domain": "dev",
           "sql": "SELECT o.login, SUM(r.stars) FROM orgs o JOIN repos r ON r.org_id = o.org_id GROUP BY o.login;",
           "sql_complexity": "medium", "sql_task_type": ""}
    plain, m_plain = score_predictions([row], [[WRONG]])
    fixed, m_fixed = score_predictions([row], [[WRONG]], repair=True)
    assert not plain[0]["runs"] and plain[0]["repairs"] == []
    assert fixed[0]["runs"] and fixed[0]["repairs"] == ["v.stars -> e.stars"]
    assert m_fixed["runs_rate"] == 1.0 > m_plain["runs_rate"]


def test_a_column_no_table_in_from_has_brings_its_table_in_through_the_foreign_keys():
    two_hops = "SELECT name, login FROM members WHERE user_id > 100;"
    _fails(two_hops, "no such column: login")
    fixed = requalify(two_hops, DDL)
    # members -> repos -> orgs; `name` (members and repos both have one) stays the members' column
    assert _run(fixed.sql) == [("bob", "acme"), ("cy", "zeta")]
    assert fixed.changes[-1] == "login -> orgs.login" and len(fixed.changes) == 3
    # an alias nobody defined names the table brought in
    fixed = requalify("SELECT g.login, SUM(r.stars) FROM repos r GROUP BY g.login ORDER BY 2 DESC;", DDL)
    assert "JOIN orgs AS g ON g.org_id = r.org_id" in fixed.sql
    assert _run(fixed.sql) == [("acme", 57), ("zeta", 3)]


def test_no_join_is_guessed_when_two_key_paths_or_two_tables_could_be_meant():
    ddl = ("CREATE TABLE players (player_id INTEGER PRIMARY KEY, handle TEXT);\n"
           "CREATE TABLE games (game_id INTEGER PRIMARY KEY, white_id INTEGER REFERENCES players(player_id), "
           "black_id INTEGER REFERENCES players(player_id), moves INTEGER);")
    keys = ForeignKeys.of(ddl)
    assert keys.neighbours("games") == {"players"} and keys.path({"games"}, "players") is None
    two_paths = "SELECT handle, moves FROM games;"
    assert requalify(two_paths, ddl).sql == two_paths
    star = ("CREATE TABLE hubs (hub_id INTEGER PRIMARY KEY);\n"
            "CREATE TABLE docks (dock_id INTEGER PRIMARY KEY, hub_id INTEGER REFERENCES hubs, label TEXT);\n"
            "CREATE TABLE gates (gate_id INTEGER PRIMARY KEY, hub_id INTEGER REFERENCES hubs, label TEXT);")
    two_tables = "SELECT label FROM hubs;"         # docks and gates are both one key away and both have a label
    assert requalify(two_tables, star).sql == two_tables
    nearest = requalify("SELECT name FROM orgs WHERE login = 'acme';", DDL)   # repos: 1 key away, members: 2
    assert nearest.changes[-1] == "name -> repos.name" and _run(nearest.sql) == [("rocket",), ("anvil",)]


def test_a_join_whose_on_names_a_missing_column_or_equates_a_column_with_itself_gets_the_key():
    for on in ("r.org_id = r.org_id", "r.login = o.org_id"):
        sql = f"SELECT o.login, SUM(r.stars) FROM orgs o JOIN repos r ON {on} GROUP BY o.login ORDER BY 2 DESC;"
        fixed = requalify(sql, DDL)
        assert fixed.changes == [f"ON {on} -> ON r.org_id = o.org_id"], fixed.changes
        assert _run(fixed.sql) == [("acme", 57), ("zeta", 3)]


def test_repair_leaves_every_right_query_alone_ood_gold_and_the_bundled_test_split():
    from pipeline.data import ood
    from pipeline.data.loaders import load

    schemas = ood.schemas()
    cases = [(q["query"], schemas[q["db_id"]]) for q in ood.questions()]
    cases += [(r["sql"], r["schema"]) for r in list(load("bundled:test"))[:300] if r["kind"] == "sql"]
    changed = [(sql, requalify(sql, ddl).changes) for sql, ddl in cases if requalify(sql, ddl).changes]
    assert len(cases) > 400 and not changed, changed[:3]    # e.g. an IN (SELECT col ...) column is the subquery's
