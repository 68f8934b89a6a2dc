"""A draft head trained here, served by real vLLM CPU through the launcher: it loads, it drafts, and the
answers are the model's own (float32, so no rounding differences between one-token and batched steps)."""
from __future__ import annotations

import os
import shutil

import pytest
import requests

pytestmark = pytest.mark.integration

QUESTIONS = [("CREATE TABLE orders (id INTEGER, customer TEXT, total REAL);", "Total of all orders per customer?"),
             ("CREATE TABLE staff (id INTEGER, name TEXT, dept TEXT, salary REAL);", "Who earns the most in IT?"),
             ("CREATE TABLE trips (id INTEGER, city TEXT, km REAL);", "How many trips went to Oslo?")]


@pytest.fixture(scope="module")
def model_with_draft(tmp_path_factory):
    from core import assets
    from pipeline.export import draft_head, draft_rows
    from serving import launch
    from tests.conftest import share_models

    if not launch.SERVE_VENV.joinpath("python").exists():
        pytest.skip("serving environment missing: make setup-serve")
    home = share_models(tmp_path_factory.mktemp("draft-home"))
    old = os.environ.get("SQLGENIE_HOME")
    os.environ["SQLGENIE_HOME"] = str(home)
    model = tmp_path_factory.mktemp("model")
    for f in assets.resolve("embedded:smollm2-135m-instruct").iterdir():
        if f.is_file():
            shutil.copy(f, model / f.name)
    report = draft_head.train_draft_head(model, draft_rows.bundled_rows("train", 24), draft_rows.bundled_rows("test", 8),
                                         epochs=1, progress=lambda *_: None)
    yield model, report
    if old is None:
        os.environ.pop("SQLGENIE_HOME", None)
    else:
        os.environ["SQLGENIE_HOME"] = old


def _answers(model, name: str, draft: int) -> tuple[list[str], list[str], dict]:
    from serving import launch
    from serving.config import ServeConfig
    from serving.text_to_sql import TextToSql

    cfg = ServeConfig(model=str(model), name=name, replicas=1, base_port=0, router_port=0, metrics_port=0,
                      max_model_len=1024, warmup_requests=1, dtype="float32", ngram_speculation=0,
                      draft_speculation=draft)
    state = launch.up(cfg, progress=lambda *_: None)
    try:
        t2s = TextToSql.for_deployment(name)
        answers = [t2s.ask(schema, q).raw for schema, q in QUESTIONS]
        metrics = requests.get(state["replicas"][0]["url"] + "/metrics", timeout=10).text
        drafts = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("vllm:spec_decode_num_drafts_total"))
        return answers, state["replicas"][0]["args"], {"drafts": drafts}
    finally:
        launch.down(name)


def test_the_launcher_serves_the_draft_head_and_answers_stay_the_models(model_with_draft):
    model, report = model_with_draft
    assert report["train_rows"] + report["held_out_rows"] + report["rows_skipped"] == 32
    assert report["train_rows"] > 0 and (model / "draft" / "model.safetensors").is_file()
    with_head, args, seen = _answers(model, "draft-on", 3)
    spec = args[args.index("--speculative-config") + 1]
    assert '"method": "eagle"' in spec and str(model / "draft") in spec
    assert seen["drafts"] > 0                       # vLLM ran the head (verify steps with proposals)
    plain, args, _ = _answers(model, "draft-off", 0)
    assert "--speculative-config" not in args
    assert with_head == plain
