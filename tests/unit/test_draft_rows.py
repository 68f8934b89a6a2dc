"""Renamed training rows for the draft head: new names everywhere a name is used, never inside a string, in the
original's style, and only where the SQL still does exactly what it did (checked on SQLite)."""
import random

from pipeline.export import draft_rows as dr

POOL = ["harbor", "lantern", "meadow", "quartz", "saddle", "timber", "violet", "walnut", "zephyr", "cobalt"]

ROW = {"schema": "CREATE TABLE customers (customer_id INT PRIMARY KEY, full_name TEXT, city TEXT);\n"
                 "CREATE TABLE orders (order_id INT, customer_id INT REFERENCES customers(customer_id), total REAL);",
       "sample_data": "INSERT INTO customers VALUES (1, 'Ann city', 'Oslo'), (2, 'Bo', 'Rome');\n"
                      "INSERT INTO orders VALUES (10, 1, 5.5), (11, 1, 2.0), (12, 2, 9.0);",
       "question": "Total spent per city?",
       "sql": "SELECT c.city, SUM(o.total) FROM customers AS c JOIN orders AS o ON o.customer_id = c.customer_id "
              "WHERE c.city <> 'city' GROUP BY c.city;"}


def _names(text):
    return {n.lower() for n in dr.SIMPLE_NAME.findall(text)}


def test_renamed_row_uses_new_names_consistently_and_returns_the_same_rows():
    new = dr.renamed(ROW, random.Random(3), POOL)
    assert new is not None
    for old in ("customers", "orders", "customer_id", "full_name", "city", "total", "order_id"):
        for key in ("schema", "sql"):
            outside_strings = dr.STRING_LITERAL.sub("''", new[key])
            assert old not in _names(outside_strings), (old, new[key])
    assert new["question"] == ROW["question"]
    assert "'Ann city'" in new["sample_data"] and "'city'" in new["sql"]      # literals untouched
    assert dr._outcome(new) == dr._outcome(ROW) is not None
    # the foreign key's column keeps one name in both tables
    fk = [w for w in dr.SIMPLE_NAME.findall(new["schema"].split("REFERENCES")[1])][1]
    assert new["schema"].count(fk) >= 3


def test_a_rename_that_changes_what_the_sql_does_is_refused():
    """A column named like a function the SQL calls: renaming `date` would rename the date() call too."""
    row = {"schema": "CREATE TABLE visits (id INT, date TEXT);", "sample_data": "INSERT INTO visits VALUES (1, '2024-01-02');",
           "question": "Visits this year?", "sql": "SELECT id FROM visits WHERE date < date('2030-01-01');"}
    assert dr.renamed(row, random.Random(0), POOL) is None
    rows, n = dr.with_renamed([row, ROW], 1.0, POOL)
    assert n == 1 and rows[0] is row and rows[1] is not ROW


def test_no_free_name_means_no_rename():
    """Every name the pool can make is already taken: the row stays as it was."""
    row = {"schema": "CREATE TABLE item (item INT);", "question": "Items?", "sql": "SELECT item FROM item;"}
    assert dr.renamed(row, random.Random(0), ["item"]) is None
    assert dr.renamed(row, random.Random(0), ["lantern"])["sql"] == "SELECT lantern FROM lantern;"


def test_new_names_keep_the_original_style():
    assert dr.styled("customer_id", ["alpha", "beta"]) == "alpha_beta"
    assert dr.styled("CustomerId", ["alpha", "beta"]) == "AlphaBeta"
    assert dr.styled("customerId", ["alpha", "beta"]) == "alphaBeta"
    assert dr.styled("CUSTOMER_ID", ["alpha", "beta"]) == "ALPHA_BETA"
    assert dr.styled("tbl_orders", ["alpha"]) == "tbl_alpha"
    assert dr.styled("TBL_Orders", ["alpha"]) == "TBL_Alpha"


def test_word_pool_takes_whole_lowercase_words_and_no_sql_keywords():
    from transformers import AutoTokenizer

    from core import assets

    tok = AutoTokenizer.from_pretrained(assets.resolve("embedded:smollm2-135m-instruct"))
    pool = dr.word_pool(tok)
    assert len(pool) > 5000
    assert all(w.isalpha() and w.islower() and 3 <= len(w) <= 9 for w in pool)
    assert not {"select", "from", "where", "order", "group", "table"} & set(pool)


def test_bundled_rows_renamed_mostly_pass_their_check():
    rows = dr.bundled_rows("train", 60)
    out, n = dr.with_renamed(rows, 1.0, POOL * 3 + [w + "x" for w in POOL])
    assert n >= 45, n            # most rows of the bundled data rename cleanly
    changed = [o for r, o in zip(rows, out) if o is not r]
    assert all(dr._outcome(o) == dr._outcome(r) for r, o in zip(rows, out) if o is not r) and changed
