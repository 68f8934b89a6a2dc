import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.evaluate.scoring import score
from sql.extract import extract_sql

CTX = "CREATE TABLE t (a INT, b REAL, c TEXT); INSERT INTO t VALUES (1, 2.5, 'x'), (2, 3.5, 'y'), (3, 1.0, 'x');"


@pytest.mark.parametrize("raw, sql", [
    ("SELECT a FROM t;", "SELECT a FROM t;"),
    ("```sql\nSELECT a\nFROM t\n```\nThis lists a.", "SELECT a\nFROM t;"),
    ("Here you go: SELECT a FROM t WHERE c = 'x;y'; -- done", "SELECT a FROM t WHERE c = 'x;y';"),
    ("SQL: WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x;"),
    ("SELECT 1;\nSELECT 2;", "SELECT 1;"),
    ("SELECT a FROM t<|im_end|>\nignored", "SELECT a FROM t;"),
    ("SELECT a FROM t\n\nThe query selects column a.", "SELECT a FROM t;"),
    ("I cannot answer that.", ""),
    ("<|start_header_id|>assistant<|end_header_id|>\n\nSELECT a FROM t;<|eot_id|>SELECT b FROM t;", "SELECT a FROM t;"),
    ("<|_|>\n```sql\nSELECT a FROM t;\n```\n<|_|>", "SELECT a FROM t;"),
    # prose is never taken for SQL
    ("The order with the highest total is the first one.", ""),
    ("You could select the rows by date; or replace the values.", ""),
    ("Create a list with the name and city of each user;", ""),
    ("To answer it:\nSELECT a FROM t;", "SELECT a FROM t;"),
    ("The query is SELECT a FROM t WHERE a > 1; it filters.", "SELECT a FROM t WHERE a > 1;"),
    ("SELEC a FRM t;", ""),
    ("SELECT a FRM t;", "SELECT a FRM t;"),          # starts as SQL: returned, the checker says what is wrong
])
def test_extract(raw, sql):
    assert extract_sql(raw) == sql


@settings(max_examples=200, deadline=None)
@given(prose=st.text(alphabet=st.characters(blacklist_characters="`;'\"", blacklist_categories=("Cs",)), max_size=40),
       n=st.integers(0, 99))
def test_extract_finds_a_fenced_query_whatever_prose_surrounds_it(prose, n):
    sql = f"SELECT a FROM t WHERE a > {n};"
    assert extract_sql(f"{prose}\n```sql\n{sql}\n```\n{prose}") == sql


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_extract_never_raises_and_returns_a_terminated_statement_or_nothing(text):
    out = extract_sql(text)
    assert out == "" or out.endswith(";")


def test_execution_match_rules():
    assert score(CTX, "SELECT a FROM t;", "SELECT a FROM t ORDER BY a DESC;").status == "match"  # multiset
    assert score(CTX, "SELECT a FROM t ORDER BY a;", "SELECT a FROM t ORDER BY a DESC;").status == "mismatch"
    assert score(CTX, "SELECT SUM(b) FROM t;", "SELECT SUM(b) FROM t WHERE a > 0;").status == "match"
    assert score(CTX, "SELECT a FROM t WHERE c = 'x';", "SELECT a FROM t;").status == "mismatch"
    assert score(CTX, "SELECT a FROM t;", "SELECT nope FROM t;").status == "pred_error"
    assert score(CTX, "SELECT a FROM t;", "").status == "empty_prediction"
    assert score(CTX, "SELECT missing FROM t;", "SELECT a FROM t;").status == "unscorable"


def test_writes_compare_database_state_and_reads_cannot_write():
    assert score(CTX, "DELETE FROM t WHERE a = 1;", "DELETE FROM t WHERE b = 2.5;", "data manipulation").status == "match"
    assert score(CTX, "DELETE FROM t WHERE a = 1;", "DELETE FROM t;", "data manipulation").status == "mismatch"
    # a prediction for a read question may not write
    assert score(CTX, "SELECT a FROM t;", "DROP TABLE t;", "data retrieval").status == "pred_denied"


def test_runaway_prediction_is_capped():
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;"
    assert score(CTX, "SELECT a FROM t;", slow, timeout_s=0.2).status == "pred_timeout"


def test_gold_sql_of_the_bundled_test_split_scores_100_percent_against_itself():
    from pipeline.data.loaders import load

    rows = [r for r in load("bundled:test")][:300]
    statuses = {score(f"{r['schema']}\n{r['sample_data']}", r["sql"], r["sql"], r["sql_task_type"]).status for r in rows}
    assert statuses == {"match"}


def test_a_corrupted_prediction_set_scores_what_it_should():
    from pipeline.data.loaders import load
    from pipeline.evaluate.stage import score_predictions

    rows = [r for r in load("bundled:test")][:150]
    preds = [("SELECT * FROM no_such_table;" if i % 3 == 0 else f"```sql\n{r['sql']}\n```") for i, r in enumerate(rows)]
    per_row, m = score_predictions(rows, [[p] for p in preds])
    assert m["execution_accuracy"] == pytest.approx(100 / 150)
    assert m["status"] == {"match": 100, "pred_error": 50}
    assert sum(m["breakdown"][k]["n"] for k in m["breakdown"] if k.startswith("sql_complexity:")) == 150


def test_evaluate_refuses_bad_arguments_before_loading_anything(home, tmp_path):
    from core.errors import ConfigError
    from core.settings import REPO_ROOT
    from pipeline import config, runs
    from pipeline.evaluate import stage as evaluate

    cfg = config.load(REPO_ROOT / "configs" / "smollm2-cpu.yaml")
    with pytest.raises(runs.RunError, match="no run"):
        evaluate.run(cfg, adapter=str(tmp_path))
    with pytest.raises(runs.RunError, match="no trained run of 'smollm2-cpu'"):
        evaluate.run(cfg, adapter="latest")
    with pytest.raises(ConfigError, match="needs --endpoint"):
        evaluate.run(cfg, backend="openai")
    with pytest.raises(ConfigError, match="--vote -1: must be >= 0"):
        evaluate.run(cfg, vote=-1)


def test_evaluating_an_fp8_export_on_a_cpu_too_slow_for_fp8_is_refused_before_vllm_starts(tmp_path, monkeypatch):
    """The same measured check as the launcher's (serving/plan.py cpu_fp8_check); the measurement is replaced by
    the one seen on an AVX512/AMX CPU (847 ms a product), and no GPU."""
    import json

    from pipeline.evaluate import generate as G
    from serving import plan as P

    cfg = {"num_attention_heads": 2, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
           "vocab_size": 400, "quantization_config": {"quant_method": "compressed-tensors", "format": "float-quantized"}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(G, "vllm_available", lambda: True)
    monkeypatch.setattr(G, "gpu_inventory", lambda: [])
    monkeypatch.setattr(P, "fp8_gemm_ms", lambda py: 847.0)
    monkeypatch.setattr(G, "run_owned", lambda *a, **k: pytest.fail("vLLM was started"))
    with pytest.raises(G.GenerationError, match="FP8 export.*use the merged export"):
        G.generate_vllm(tmp_path, None, [G.Request([1, 2, 3], None)], [0])
