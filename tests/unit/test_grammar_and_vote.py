"""Schema-constrained decoding and execution-guided voting, checked without a server: the schema's grammar
(xgrammar, the engine vLLM uses) accepts every gold query of the OOD yardstick and rejects names that do not
exist; voting keeps the result most candidates agree on."""
from __future__ import annotations

import pytest
from xgrammar.testing import _is_grammar_accept_string as accepts

from pipeline.data import ood
from sql.grammar import schema_grammar
from sql.statements import split_context
from sql.vote import choose

SHOP = ("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);\n"
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL, "
        "\"Order Date\" DATE);")
ROWS = ("INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Linus', 'FI'), (3, 'Grace', 'US');\n"
        "INSERT INTO orders VALUES (1, 1, 120.0, '2024-01-05'), (2, 1, 80.5, '2024-02-11'), (3, 3, 42.0, '2024-03-01');")


def test_the_grammar_accepts_every_gold_query_of_the_ood_set():
    schemas = ood.schemas()
    rejected = [q["query"] for q in ood.questions()
                if not accepts(schema_grammar(split_context(schemas[q["db_id"]])[0]), q["query"])]
    assert len(ood.questions()) >= 200 and not rejected, rejected[:5]


@pytest.mark.parametrize("sql", [
    "SELECT salary FROM customers;",                    # a column no table has
    "SELECT c.salary FROM customers c;",                # qualified, still no such column
    "SELECT name FROM employees;",                      # a table that does not exist
    "SELECT COUNT(*) FROM customer;",                   # near miss of a table name
    "DELETE FROM customers;",                           # not a read
    "SELECT name FROM customers; DROP TABLE orders;",   # a second statement
    "SELECT customersname.id FROM customers;",          # a qualifier that is no table and no table alias
    "SELECT HAVING\t\t\t\t\t\t\t\t\t.id FROM customers;",  # run-away whitespace (seen on the GPU)
])
def test_the_grammar_rejects_what_the_schema_does_not_have(sql):
    assert not accepts(schema_grammar(SHOP), sql)


@pytest.mark.parametrize("sql", [
    "SELECT c.name, SUM(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.name ORDER BY total DESC LIMIT 2;",
    "SELECT count(*) FROM orders WHERE \"Order Date\" >= '2024-02-01'",
    "SELECT cust.name, ord.amount FROM customers AS cust JOIN orders ord ON ord.customer_id = cust.id;",
    "SELECT t1.name FROM customers t1 WHERE t1.id IN (SELECT o.customer_id FROM orders o);",
    "WITH t AS (SELECT customer_id, SUM(amount) AS s FROM orders GROUP BY customer_id) "
    "SELECT name FROM customers JOIN t ON t.customer_id = customers.id WHERE t.s > 100;",
])
def test_the_grammar_accepts_ordinary_queries_of_the_schema(sql):
    assert accepts(schema_grammar(SHOP), sql)


@pytest.mark.parametrize("loose, canonical", [
    ("select name from customers where country = 'UK'", "SELECT name FROM customers WHERE country = 'UK'"),
    ("SELECT name\nFROM customers\n  WHERE id  =  1", "SELECT name FROM customers WHERE id = 1"),
    ("SELECT COUNT( * ),name FROM customers GROUP BY name", "SELECT COUNT(*), name FROM customers GROUP BY name"),
    ("SELECT name n FROM customers", "SELECT name AS n FROM customers"),
])
def test_the_grammar_holds_the_model_to_one_layout(loose, canonical):
    """One space between words, upper-case keywords, AS before a column alias: the layout of every gold query we
    have, and the one xgrammar can mask cheaply (bench/grammar_cost.py). The same query laid out freely is refused,
    so a constrained model writes it the canonical way."""
    g = schema_grammar(SHOP)
    assert accepts(g, canonical) and not accepts(g, loose)


def test_xgrammar_settles_the_mask_at_compile_time_and_lets_every_gold_token_through(tiny_tokenizer_dir, capfd):
    """A constrained decode step costs what xgrammar cannot settle from the masks it computed when it compiled the
    grammar: the tokens it must check against the parser at run time ("uncertain"). Free whitespace (`ws?` beside
    `ws`, a whitespace rule that may end after any space) left most space-prefixed tokens uncertain at most steps:
    25 ms a token with SmolLM2's 49k tokens. Counted from xgrammar's own debug log, not timed. Every token of the
    gold queries must still pass the mask (a wrong lookahead would refuse it there while strings still parse)."""
    import re

    import xgrammar as xgr
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
    compiler = xgr.GrammarCompiler(info, max_threads=1)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    queries = [(SHOP, "SELECT c.name, SUM(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id "
                      "GROUP BY c.name ORDER BY total DESC LIMIT 2;"),
               (SHOP, "WITH t AS (SELECT customer_id, SUM(amount) AS s FROM orders GROUP BY customer_id) "
                      "SELECT name FROM customers JOIN t ON t.customer_id = customers.id WHERE t.s > 100;")]
    schemas = ood.schemas()
    queries += [(split_context(schemas[q["db_id"]])[0], q["query"]) for q in ood.questions()[::12]]
    steps, refused = 0, []
    capfd.readouterr()
    for ddl, sql in queries:
        matcher = xgr.GrammarMatcher(compiler.compile_grammar(schema_grammar(ddl)))
        for tid in tok.encode(sql, add_special_tokens=False):
            matcher.fill_next_token_bitmask(bitmask, debug_print=True)
            steps += 1
            if not (int(bitmask[0, tid // 32]) >> (tid % 32)) & 1 or not matcher.accept_token(tid):
                refused.append(sql)
                break
    uncertain = [int(n) for n in re.findall(r"uncertain_num=(\d+)", capfd.readouterr().err)]
    assert uncertain, "xgrammar's debug log names no uncertain_num: its format changed"
    assert not refused, refused[:3]
    assert sum(uncertain) / steps < 0.02 * len(tok), (sum(uncertain) / steps, len(tok))


def test_the_grammar_takes_the_table_aliases_the_bundled_data_writes():
    """The generator aliases a table by its words' initials, numbered on a clash, and leaves a `tbl` prefix out
    (pipeline/datagen/query.py): `ins` for tbl_inspectors, `ti2` for a second tbl_inspections. Still a closed set."""
    g = schema_grammar("CREATE TABLE tbl_inspectors (code INT, full_name TEXT);\n"
                       "CREATE TABLE tbl_inspections (insp_no INT, inspector_id INT, redo_of INT);")
    assert accepts(g, "SELECT i.insp_no, ins.full_name FROM tbl_inspections i JOIN tbl_inspectors ins "
                      "ON i.inspector_id = ins.code;")
    assert accepts(g, "SELECT ti.insp_no FROM tbl_inspections ti JOIN tbl_inspections ti2 ON ti2.insp_no = ti.redo_of;")
    assert not accepts(g, "SELECT xyz.full_name FROM tbl_inspectors xyz;")


def test_voting_keeps_the_majority_result_and_drops_failures():
    right = "SELECT COUNT(*) FROM orders;"
    same = "SELECT COUNT(id) FROM orders;"            # other text, same result: they agree
    wrong = "SELECT COUNT(*) FROM orders WHERE amount > 100;"
    broken = "SELECT COUNT(*) FROM nowhere;"
    pick = choose([wrong, right, broken, same, right], SHOP + "\n" + ROWS)
    assert pick.sql == right and pick.agreement == 3 and pick.failed == 1 and pick.candidates == 5 and pick.groups == 2


def test_voting_prefers_the_greedy_answer_on_a_tie_and_rows_over_nothing():
    greedy, other = "SELECT name FROM customers WHERE country = 'UK';", "SELECT name FROM customers WHERE country = 'FI';"
    assert choose([greedy, other], SHOP + "\n" + ROWS).sql == greedy
    empty = "SELECT name FROM customers WHERE country = 'XX';"
    assert choose([empty, empty, other], SHOP + "\n" + ROWS).sql == other      # an empty result rarely answers


def test_voting_without_sample_rows_runs_candidates_on_generated_rows():
    pick = choose(["SELECT nope FROM customers;", "SELECT name FROM customers;"], SHOP)
    assert pick.sql == "SELECT name FROM customers;" and pick.failed == 1
    assert choose(["", "  "], SHOP).sql == "" and choose([], SHOP).candidates == 0


def test_grammar_check_names_the_xgrammar_that_misreads_transformers5_tokenizers(monkeypatch):
    from serving import grammar_check

    versions = {"xgrammar": (0, 2, 3), "transformers": (5, 17, 0)}
    monkeypatch.setattr(grammar_check, "_version", lambda pkg: versions[pkg])
    why = grammar_check.problem()
    assert why and "0.2.3" in why and "xgrammar>=0.2.5" in why
    versions["xgrammar"] = (0, 2, 8)
    assert grammar_check.problem() is None
    versions.update(xgrammar=(0, 2, 3), transformers=(4, 57, 1))
    assert grammar_check.problem() is None


def test_a_pick_says_when_no_candidate_ran():
    assert choose(["SELECT nope FROM customers;", "SELECT x FROM nowhere;"], SHOP + "\n" + ROWS).none_ran
    assert not choose(["SELECT nope FROM customers;", "SELECT name FROM customers;"], SHOP).none_ran
    assert not choose([], SHOP).none_ran


class _Scripted:
    """Stands in for the HTTP client: the fault "every sampled candidate fails" cannot be caused on purpose with a
    real model, so each request returns the next scripted round and records what was asked."""

    model = "scripted"

    def __init__(self, rounds):
        self.rounds, self.asked = list(rounds), []

    def complete(self, ids, **kw):
        from serving.client import Completion

        self.asked.append(kw)
        texts = self.rounds.pop(0)
        return Completion(texts[0], len(ids), 5 * len(texts), 0.0, texts=texts, prompt_token_ids=list(ids))


@pytest.mark.parametrize("second_round_runs", [True, False])
def test_ask_draws_a_hotter_second_round_only_when_no_candidate_ran(tiny_tokenizer_dir, second_round_runs):
    from serving.text_to_sql import TextToSql

    bad = ["SELECT nope FROM customers;"] * 3
    good = ["SELECT name FROM customers;", "SELECT name FROM customers;", "SELECT nope FROM customers;"]
    t2s = TextToSql("http://127.0.0.1:9", tiny_tokenizer_dir, model="scripted")
    t2s.client = _Scripted([bad[:1], bad[1:], good if second_round_runs else bad])
    ans = t2s.ask(SHOP, "names of the customers", sample_rows=ROWS, candidates=2, repair=False)
    assert len(t2s.client.asked) == 3 and ans.resampled and ans.candidates == 6
    assert t2s.client.asked[2]["n"] == 2 and t2s.client.asked[2]["temperature"] == 1.0
    if second_round_runs:
        assert ans.sql == "SELECT name FROM customers;" and ans.agreement == 2 and ans.failed_candidates == 4
    else:
        assert ans.agreement == 0 and ans.failed_candidates == 6

    t2s.client = _Scripted([bad[:1], good[:2]])          # a first-round candidate runs: no second request
    ans = t2s.ask(SHOP, "names of the customers", sample_rows=ROWS, candidates=2, repair=False)
    assert len(t2s.client.asked) == 2 and not ans.resampled and ans.sql == "SELECT name FROM customers;"


def test_evaluation_resamples_exactly_the_rows_where_no_candidate_ran():
    from pipeline.evaluate.stage import none_ran

    rows = [{"schema": SHOP, "sample_data": ROWS}] * 3
    outs = [["SELECT nope FROM customers;", "SELECT name FROM customers;"],
            ["SELECT nope FROM customers;", "SELECT x FROM nowhere;"],
            ["SELECT customers.country FROM orders;"]]     # runs only once repair joins customers in
    assert none_ran(rows, outs, repair=False) == [1, 2]
    assert none_ran(rows, outs, repair=True) == [1]


class _Echo(_Scripted):
    """The server's echo of the prompt ids, possibly altered: a real vLLM returns what it was sent, so a server
    that re-tokenizes or adds a BOS cannot be caused on purpose; this one returns `echo(ids)`."""

    def __init__(self, echo):
        super().__init__([["SELECT name FROM customers;"]] * 3)
        self.echo = echo

    def complete(self, ids, **kw):
        out = super().complete(ids, **kw)
        out.prompt_token_ids = self.echo(list(ids)) if kw.get("return_token_ids") else None
        return out


def test_the_first_answer_checks_the_servers_prompt_ids_and_later_ones_do_not_ask_for_them(tiny_tokenizer_dir):
    from serving.text_to_sql import AskError, TextToSql

    t2s = TextToSql("http://127.0.0.1:9", tiny_tokenizer_dir, model="scripted")
    t2s.client = _Echo(lambda ids: ids)
    first = t2s.ask(SHOP, "names of the customers", repair=False)
    second = t2s.ask(SHOP, "names of the customers again", repair=False)
    assert [a.get("return_token_ids") for a in t2s.client.asked] == [True, False]
    assert first.server_prompt_ids == first.prompt_ids and second.server_prompt_ids is None

    bad = TextToSql("http://127.0.0.1:9", tiny_tokenizer_dir, model="scripted")
    bad.client = _Echo(lambda ids: [ids[0] + 1] + ids[1:])  # a server that saw another first token
    with pytest.raises(AskError, match="other token ids than this client sent .* first difference at position 0"):
        bad.ask(SHOP, "names of the customers", repair=False)
    bad.client = _Echo(lambda ids: ids + [7])              # one token added at the end
    with pytest.raises(AskError, match=r"\d+ vs \d+ ids"):  # not marked checked: the next answer checks again
        bad.ask(SHOP, "names of the customers", repair=False)
