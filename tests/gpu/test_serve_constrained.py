"""The constrained serve path on a GPU: a vLLM replica of the embedded SmolLM2 on CUDA behind vllm-router,
asked through `TextToSql.ask(constrained=True)` (xgrammar masks every token with the schema's grammar), once
greedy and once with 4 sampled candidates voting; the answers parse and name only the schema's tables and columns.

    SQLGENIE_VLLM_PYTHON=python3 PYTHONPATH=/tmp/vsite:... python -m pytest -m gpu tests/gpu/test_serve_constrained.py
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu

SCHEMA = ("CREATE TABLE employees (id INTEGER PRIMARY KEY, full_name TEXT, department TEXT, salary REAL);\n"
          "CREATE TABLE projects (id INTEGER PRIMARY KEY, title TEXT, lead_id INTEGER REFERENCES employees(id));")
ROWS = ("INSERT INTO employees VALUES (1,'Ann Lee','Sales',5000),(2,'Bob Ray','IT',7000);\n"
        "INSERT INTO projects VALUES (1,'Atlas',2),(2,'Beacon',1);")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    from core import assets
    from serving import launch
    from serving.config import ServeConfig
    from tests.conftest import home_env, share_models

    if not launch.vllm_available():
        pytest.skip("vLLM is not here: carry it (../shared/gpu/build-vllm-chunks.sh) and set SQLGENIE_VLLM_PYTHON")
    with home_env(share_models(tmp_path_factory.mktemp("gpu-serve-home"))):
        try:
            assets.build_smollm()
        except assets.AssetError as e:
            pytest.skip(f"the embedded SmolLM2 cannot be built here ({e}): set SMOLLM_GGUF to its GGUF")
        cfg = ServeConfig(model="embedded:smollm2-135m-instruct", name="gputest", replicas=1, gpus=[0],
                          base_port=18300, router_port=18200, metrics_port=18290, max_model_len=2048,
                          warmup_requests=1)
        try:
            yield launch.up(cfg, progress=lambda *_: None, supervised=True)
        finally:
            launch.down("gputest")            # also when up failed half way: nothing of it left running


@pytest.mark.parametrize("candidates", [0, 4])
def test_constrained_answers_parse_and_name_only_the_schema_s_tables(deployment, candidates):
    """The grammar names only the schema's tables and columns (which column belongs to which table is the
    checker's business, not the grammar's: not asserted for a 135M base model)."""
    from serving.text_to_sql import TextToSql

    assert all("cuda" in r["device"] for r in deployment["replicas"]), deployment["replicas"]
    t2s = TextToSql.for_deployment("gputest")
    names = {"employees", "projects", "id", "full_name", "department", "salary", "title", "lead_id"}
    for question in ("Which employees work in IT?", "How many projects does each department lead?",
                     "List the title of every project led by Ann Lee."):
        ans = t2s.ask(SCHEMA, question, sample_rows=ROWS, constrained=True, candidates=candidates, execute=True,
                      max_tokens=160)
        assert ans.constrained and ans.candidates in (1 + candidates, 1 + 2 * candidates)   # (+ a second round)
        if not ans.check.parses:                 # cut at max_tokens while looping: the grammar's prefix still
            continue                             # holds, checked by the next answers
        import sqlglot

        used = {t.name.lower() for t in sqlglot.parse_one(ans.sql, read="sqlite").find_all(sqlglot.exp.Table)}
        assert used and used <= names, (question, ans.sql)
    simple = t2s.ask(SCHEMA, "Which employees work in IT?", sample_rows=ROWS, constrained=True, execute=True)
    assert simple.check.parses and simple.check.names_exist, (simple.sql, simple.check.errors)
