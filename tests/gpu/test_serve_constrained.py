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
        state = launch.up(cfg, progress=lambda *_: None, supervised=True)
        yield state
        launch.down("gputest")


@pytest.mark.parametrize("candidates", [0, 4])
def test_constrained_answers_parse_and_use_only_the_schema_s_names(deployment, candidates):
    from serving.text_to_sql import TextToSql

    assert all("cuda" in r["device"] for r in deployment["replicas"]), deployment["replicas"]
    t2s = TextToSql.for_deployment("gputest")
    for question in ("Which employees work in IT?", "How many projects does each department lead?",
                     "List the title of every project led by Ann Lee."):
        ans = t2s.ask(SCHEMA, question, sample_rows=ROWS, constrained=True, candidates=candidates, execute=True)
        assert ans.sql and ans.check.parses, (question, ans.raw, ans.check.errors)
        assert ans.check.names_exist, (question, ans.sql, ans.check.errors)
        assert ans.constrained and ans.candidates == 1 + candidates
