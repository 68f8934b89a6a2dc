"""The data generator (pipeline/datagen/): schemas drawn from the lexicon, query families in the spec's
proportions, questions in the lexicon's words, every row verified by execution, held-out splits, the card."""
import collections
import json
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipeline.datagen import generate as gen
from pipeline.datagen.lexicon import FORBIDDEN_DOMAINS, FORBIDDEN_ENTITIES, load_all
from sql.sandbox import Sandbox

REPO = gen.Path(__file__).resolve().parents[2]
BUNDLED = REPO / "data" / "sqlgenie-sql"
LEXICON = {d.key: d for d in load_all()}
def train_families() -> list:
    return [f for f in gen.FAMILIES.values() if f.name not in gen.HELD_OUT_FAMILIES]


@pytest.fixture(scope="module")
def sample():
    """600 train-style rows with their construction metadata (one generation shared by the tests below)."""
    meta: list = []
    stats = gen.Stats()
    rows = gen.generate(600, seed=21, families=train_families(), meta=meta, stats=stats)
    return rows, meta, stats


def test_generation_is_deterministic_whatever_the_hash_seed():
    code = ("import json; from pipeline.datagen.generate import generate; m = []; "
            "print(json.dumps([generate(40, seed=3, meta=m), m], default=str))")
    runs = []
    for hash_seed in ("1", "987654"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    meta: list = []
    here = json.loads(json.dumps([gen.generate(40, seed=3, meta=meta), meta], default=str))
    assert runs[0] == runs[1] == here
    assert gen.generate(40, seed=4) != runs[0][0]


def test_every_row_runs_on_its_own_database(sample):
    rows, _, _ = sample
    for r in rows:
        with Sandbox.from_context(r["sql_context"]) as box:
            writes = r["sql_task_type"] == "data manipulation"
            res = box.query(r["sql"], read_only=not writes)
            if writes:
                assert res.changes > 0, r["sql"]
            else:
                assert res.rows and any(v is not None for row in res.rows for v in row), r["sql"]
    assert {r["template"] for r in rows} <= {f.name for f in train_families()}
    assert list(rows[0]) == gen.GRETEL_COLUMNS + gen.GRETEL_EXTRA


def test_shapes_come_in_the_spec_proportions(sample):
    rows, meta, _ = sample
    n = len(rows)
    tiers = collections.Counter(gen.tier_of(r) for r in rows)
    shares = {k.split(" (")[0]: v / n for k, v in tiers.items()}
    assert abs(shares["one table"] - 0.45) < 0.06, shares
    assert abs(shares["one join or group"] - 0.35) < 0.06, shares
    assert abs(shares["nesting, set ops, 3 tables"] - 0.20) < 0.05, shares
    worded = sum(r["template"] in ("case_label", "window_rank", "running_total") for r in rows)
    assert worded / n <= 0.03
    assert "CASE WHEN" not in " ".join(r["sql"] for r in rows if r["template"] != "case_label")
    assert " OVER (" not in " ".join(r["sql"] for r in rows if r["template"] not in ("window_rank", "running_total"))
    assert sum(r["sql_task_type"] == "data manipulation" for r in rows) / n <= 0.04
    assert not any(r["sql"].startswith(("CREATE", "ALTER", "DROP")) for r in rows)
    # a one-table question is mostly asked of a schema of several tables
    one = [m for m in meta if m["tier"] == "one_table"]
    assert sum(len(m["tables"]) > 1 for m in one) / len(one) > 0.8
    assert len({r["template"] for r in rows}) >= 30


def test_literal_values_keep_their_case_in_the_question_and_the_sql(sample):
    rows, meta, _ = sample
    checked = sloppy = 0
    for r, m in zip(rows, meta):
        for f in m["filters"]:
            v = f["value"]
            if not isinstance(v, str) or f["op"] not in ("=", "IN") or not re.search("[A-Z]", v):
                continue
            assert v in r["sql_prompt"], (v, r["sql_prompt"])
            assert "'" + v.replace("'", "''") + "'" in r["sql"], (v, r["sql"])
            checked += 1
            sloppy += m["sloppy"]
    assert checked > 50 and sloppy > 5, (checked, sloppy)


def _words_allowed(f: dict) -> set[str]:
    """What the lexicon lets a question call this column: its phrases, the schema's column name, and the fixed
    parts of its comparatives, filter phrase and yes/no wording."""
    d = LEXICON[f["domain"]]
    ent = next((e for e in d.entities if e.key == f["entity"]), None)
    attrs = (ent.label, *ent.attrs) if ent else tuple(a for b in d.bridges for a in b.attrs)
    a = next(x for x in attrs if x.name == f["attr"])
    out = {p for p in a.phrases} | {f["column"]}
    for phrase in (a.more, a.less, a.filter_phrase, a.is_true, a.is_false):
        if phrase:
            out.add(phrase)
    if a.more.endswith(" after {v}"):       # 'hired after {v}' says a year as 'hired in {v}', a range 'between'
        out |= {a.more.replace(" after {v}", " in {v}"), a.more.replace(" after {v}", " between {v}")}
    return out


def _norm(text: str) -> str:
    """A question as a sloppy writer would have typed it ('w/', 'avg', no 'the'), to compare words."""
    text = text.lower().replace("w/ ", "with ").replace("avg", "average")
    return " ".join(w for w in text.split() if w not in ("the", "please", "me"))


def _said(part: str, question: str) -> bool:
    """A fixed part of a lexicon phrase is in the question, as itself or in the forms a predicate takes
    ('with a budget over' -> 'have a budget over', 'who joined after' -> 'joined after', 'works as' -> 'work as')."""
    part, q = _norm(part), _norm(question)
    first, _, rest = part.partition(" ")
    forms = {part}
    if first in ("who", "that", "which"):
        forms.add(rest)
    if first == "with":
        forms.add(f"have {rest}")
    if first == "without":
        forms.add(f"have no {rest}")
    if first.endswith("s"):
        forms |= {f"{first[:-1]} {rest}".strip(), f"{first[:-2]} {rest}".strip()}
    return any(f in q for f in forms)


def test_a_question_names_the_column_its_sql_filters_on(sample):
    rows, meta, _ = sample
    named_by_words = named_by_value = 0
    for r, m in zip(rows, meta):
        sql, q = r["sql"], r["sql_prompt"]
        for f in m["filters"]:
            col, v = f["column"], f["value"]
            spelled = f'(?:"{re.escape(col)}"|\\b{re.escape(col)}\\b)'      # quoted when it must be
            assert re.search(spelled, sql), (col, sql)
            if f["op"] in ("=", ">", "<", ">=", "<=") and isinstance(v, (str, int, float)):
                # the SQL compares that very column with the literal the question carries
                lit = "'" + v.replace("'", "''") + "'" if isinstance(v, str) else str(v)
                assert re.search(spelled + r"\s*" + re.escape(f["op"]) + r"\s*" + re.escape(lit), sql), (f, sql)
            if f["attr"] is None or not f["words"]:
                continue
            words = f["words"][0]
            if words in _words_allowed(f):
                fixed = [p.strip() for p in words.split("{v}") if p.strip()]
                assert all(_said(p, q) for p in fixed), (words, q)
                named_by_words += 1
            else:       # a row named by its label ('the Finance department'): the question carries the value
                shown = v[1] if isinstance(v, tuple) else v
                assert str(shown) in q, (f, q)
                named_by_value += 1
    assert named_by_words > 200 and named_by_value > 30, (named_by_words, named_by_value)


def test_no_yardstick_name_in_any_generated_schema(sample):
    rows, _, _ = sample

    def words(name: str) -> tuple:
        name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name))
        return tuple(w[:-1] if w.endswith("s") else w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)

    bad = [words(f) for f in FORBIDDEN_DOMAINS + FORBIDDEN_ENTITIES]
    seen = 0
    for r in rows:
        with Sandbox.from_context(r["sql_context"]) as box:
            tables = [t for (t,) in box.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for t in tables:
                names = [t] + [c[1] for c in box.conn.execute(f'PRAGMA table_info("{t}")')]
                for n in names:
                    w = words(n)
                    seen += 1
                    assert not any(w[i:i + len(b)] == b for b in bad for i in range(len(w))), (n, r["domain"])
    assert seen > 5000


def test_many_distinct_schemas_with_keys_and_distractors(sample):
    rows, meta, stats = sample
    assert len(stats.schemas) >= 0.97 * len(rows)
    assert sum(bool(m["distractors"]) for m in meta) > 0.25 * len(rows)
    assert sum("REFERENCES" in r["sql_context"] for r in rows) > 0.7 * len(rows)
    assert sum(" JOIN " in r["sql"] for r in rows) > 0.25 * len(rows)
    styles = collections.Counter(m["style"] for m in meta)
    assert len(styles) == 7, styles


def test_held_out_domains_and_families_never_reach_train(tmp_path):
    res = gen.run(tmp_path, 150, 60, seed=5)
    train = pq.read_table(tmp_path / "train.parquet").to_pylist()
    test = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert res["train"] == len(train) == 150 and res["test"] == len(test) == 60
    assert not {r["domain"] for r in train} & set(gen.HELD_OUT_DOMAINS)
    assert {r["domain"] for r in test} <= set(gen.HELD_OUT_DOMAINS)
    assert not {r["template"] for r in train} & set(gen.HELD_OUT_FAMILIES)
    assert {r["template"] for r in test} & set(gen.HELD_OUT_FAMILIES)
    assert len({r["id"] for r in train + test}) == 210
    # not even as distractor tables: the same seed's train rows, with their metadata
    meta: list = []
    train_domains = [d for d in LEXICON.values() if d.key not in gen.HELD_OUT_DOMAINS]
    gen.generate(150, seed=5, domains=train_domains, families=train_families(), meta=meta)
    assert not {k for m in meta for k in m["domains"]} & set(gen.HELD_OUT_DOMAINS)


def test_the_card_numbers_match_the_data(tmp_path):
    gen.run(tmp_path, 120, 40, seed=9)
    train = pq.read_table(tmp_path / "train.parquet").to_pylist()
    test = pq.read_table(tmp_path / "test.parquet").to_pylist()
    card = (tmp_path / "README.md").read_text()
    assert f"{len(train)} train rows, {len(test)} test rows" in card
    for key, title in (("sql_complexity", "sql_complexity"), ("sql_task_type", "sql_task_type"),
                       ("template", "family"), ("domain", "domain")):
        block = card.split(f"| {title} | train |", 1)[1].split("\n\n", 1)[0]
        got = {m[0]: (int(m[1]), int(m[2])) for m in re.findall(r"^\| (.+?) \| (\d+) \| [\d.]+ \| (\d+) \|", block, re.M)}
        want_train = collections.Counter(r[key] for r in train)
        want_test = collections.Counter(r[key] for r in test)
        assert got == {k: (want_train[k], want_test[k]) for k in set(want_train) | set(want_test)}, title
    kept = re.search(r"kept: (\d+), rejected: (\d+) \(", card)
    assert int(kept[1]) == len(train) + len(test)


def test_verify_rejects_empty_order_dependent_and_tied_answers():
    ctx = "CREATE TABLE t (id INT, v INT); INSERT INTO t VALUES (1, 5), (2, 5), (3, 7);"
    rev = "CREATE TABLE t (id INT, v INT); INSERT INTO t VALUES (3, 7), (2, 5), (1, 5);"
    assert gen.verify("SELECT id FROM t WHERE v > 100;", "data retrieval", ctx, rev) == "empty_result"
    assert gen.verify("SELECT id FROM t ORDER BY v LIMIT 1;", "data retrieval", ctx, rev) == "nondeterministic"
    # a tie at the limit that the physical order happens to hide: 2 and 1 have v = 5, sorted by id both ways
    probe = "SELECT v FROM t ORDER BY v DESC;"
    assert gen.verify("SELECT id FROM t ORDER BY v DESC, id LIMIT 2;", "data retrieval", ctx, rev,
                      probe=probe, limit=2) == "tie_at_limit"
    assert gen.verify("SELECT id FROM t ORDER BY v DESC LIMIT 1;", "data retrieval", ctx, rev, probe=probe,
                      limit=1) is None
    assert gen.verify("DELETE FROM t WHERE v > 100;", "data manipulation", ctx, rev) == "no_rows_changed"
    assert gen.verify("SELECT nope FROM t;", "data retrieval", ctx, rev) == "sql_error"


def test_bundled_split_sizes_columns_and_no_leakage():
    train = pq.read_table(BUNDLED / "train.parquet").to_pylist()
    test = pq.read_table(BUNDLED / "test.parquet").to_pylist()
    assert len(train) >= 10_000 and len(test) >= 1_000
    assert list(train[0]) == gen.GRETEL_COLUMNS + gen.GRETEL_EXTRA
    assert len({r["id"] for r in train + test}) == len(train) + len(test)
    assert not {(r["sql_prompt"], r["sql"]) for r in test} & {(r["sql_prompt"], r["sql"]) for r in train}
    assert not {r["domain"] for r in train} & {r["domain"] for r in test}
    assert {r["template"] for r in test} - {r["template"] for r in train}       # families only the test has


def test_bundled_test_rows_still_verify():
    rows = pq.read_table(BUNDLED / "test.parquet").to_pylist()
    for r in rows[:300]:
        assert gen.verify(r["sql"], r["sql_task_type"], r["sql_context"], r["sql_context"]) is None, r["sql"]
