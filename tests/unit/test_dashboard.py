"""Dashboard pages render without exceptions (Streamlit AppTest), with jobs, metrics and exports present."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def populated(home):
    from pipeline.jobs import JobStore

    store = JobStore()
    for i in range(200):  # a store with history: the page must still render
        with store._db() as db:
            db.execute("INSERT INTO jobs (kind, name, config, status, created, log_path) VALUES (?,?,?,?,?,?)",
                       ("train", f"run{i}", "name: x\n", "succeeded", 1.0 + i, str(home / "none.log")))
    train = home / "runs" / "demo" / "train"
    train.mkdir(parents=True)
    (train / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "loss": 2.0 / s, "lr": 1e-3, "tokens_per_s": 300,
                                                                "eta_s": 100 - s}) for s in range(1, 11)) + "\n")
    return home


@pytest.mark.parametrize("page", ["Jobs", "New job", "GPUs", "Training", "Serving", "Models", "Data"])
def test_every_page_renders(populated, page):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "dashboard.py"), default_timeout=60)
    at.session_state["page"] = page
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page == "Training":
        assert any(m.label == "loss" and m.value == "0.2000" for m in at.metric)
    if page == "Jobs":
        assert at.dataframe and len(at.dataframe[0].value) == 200


def test_new_job_shows_config_errors_inline(populated):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "dashboard.py"), default_timeout=60)
    at.session_state["page"] = "New job"
    at.run()
    at.text_area[0].set_value("name: bad\ndata:\n  max_seq_len: 4\n")
    at.button[0].click()
    at.run()
    assert any("max_seq_len" in e.value for e in at.error)


def test_token_required_beyond_localhost(monkeypatch):
    from app import auth

    monkeypatch.delenv("SQLGENIE_TOKEN", raising=False)
    with pytest.raises(SystemExit, match="set SQLGENIE_TOKEN"):
        auth.check_bind("0.0.0.0")
    auth.check_bind("127.0.0.1")
    monkeypatch.setenv("SQLGENIE_TOKEN", "s3cret")
    auth.check_bind("0.0.0.0")
    assert auth.token_ok("s3cret") and not auth.token_ok("nope") and not auth.token_ok(None)
