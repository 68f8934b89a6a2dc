"""Dashboard pages render without exceptions (Streamlit AppTest) with jobs, runs, metrics and deployments
present; the job selection follows the URL's job id; the New-job preset switch fills the form; config
errors show inline; a public bind without a token shows nothing but the refusal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

APP = str(Path(__file__).resolve().parents[2] / "app" / "shell.py")
PAGES = {"Jobs": "views/jobs.py", "New job": "views/new_job.py", "GPUs": "views/gpus.py",
         "Training": "views/training.py", "Serving": "views/serving.py", "Models": "views/models.py",
         "Evaluations": "views/evaluations.py", "Data": "views/data.py"}


@pytest.fixture
def populated(home):
    from pipeline import config, runs
    from pipeline.jobs import JobStore

    store = JobStore()
    for i in range(200):  # a store with history: the page must still render
        store._exec("INSERT INTO jobs (kind, name, config, status, created, log_path) VALUES (?,?,?,?,?,?)",
                    ("train", f"run{i}", "name: x\n", "succeeded", 1.0 + i, str(home / "none.log")))
    run = runs.new_run(config.load(None, ["name=demo"]), job_id=200)
    run.metrics_path.write_text("\n".join(json.dumps({"step": s, "max_steps": 10, "loss": 2.0 / s, "lr": 1e-3,
                                                      "tokens_per_s": 300, "eta_s": 100 - s}) for s in range(1, 11)) + "\n")
    return home


def _app(address: str = "127.0.0.1"):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    config.set_option("server.address", address)     # what app/.streamlit/config.toml gives a real server
    return AppTest.from_file(APP, default_timeout=60)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders(populated, page):
    at = _app()
    at.run()
    at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    if page == "Training":
        assert any(m.label == "loss" and m.value == "0.2000" for m in at.metric)
    if page == "Jobs":
        assert at.dataframe and len(at.dataframe[0].value) == 200


def test_the_selected_job_is_the_one_in_the_url(populated):
    """?job=57 selects #57 and keeps it when newer jobs appear (the wrong-job bug)."""
    from pipeline.jobs import JobStore

    at = _app()
    at.query_params["job"] = "57"
    at.run()
    assert at.selectbox[0].value == 57
    JobStore().submit("prepare", "name: newer\n", start=False)          # a new job arrives (another tab)
    at.run()
    assert at.selectbox[0].value == 57
    assert any("Cancel #57" in b.label or "Rerun #57" in b.label for b in at.button)


def test_choosing_a_preset_fills_the_form(populated):
    at = _app()
    at.run()
    at.switch_page(PAGES["New job"]).run()
    preset = next(s for s in at.selectbox if s.label.startswith("Preset"))
    assert preset.value == "smollm2-cpu"                                  # the one that fits a CPU machine
    name = next(t for t in at.text_input if t.label == "name")
    assert name.value == "smollm2-cpu"
    method = lambda: next(s for s in at.selectbox if s.label.startswith("method")).value  # noqa: E731
    assert method() == "full"                                  # the small model's CPU recipe trains every weight
    preset.set_value("llama31-8b-qlora").run()
    name = next(t for t in at.text_input if t.label == "name")
    rank = next(n for n in at.number_input if n.label == "LoRA rank")
    assert name.value == "llama31-8b-qlora" and rank.value == 128 and method() == "lora"
    assert any("llama31-8b-qlora" in str(c.value) for c in at.text_area)   # the YAML view follows


def test_new_job_shows_config_errors_inline(populated):
    at = _app()
    at.run()
    at.switch_page(PAGES["New job"]).run()
    lr = next(n for n in at.number_input if n.label == "learning rate")
    lr.set_value(0.0).run()
    assert any("train.learning_rate: 0.0 must be > 0" in e.value for e in at.error)


def test_an_out_of_range_number_is_what_the_form_checks_and_it_cannot_be_submitted(populated):
    """max_steps -5 (its floor is -1): the value shown is the value checked (a widget min_value would keep the
    last valid one and submit it), the error names the field, and Submit stays disabled."""
    at = _app()
    at.run()
    at.switch_page(PAGES["New job"]).run()
    steps = next(n for n in at.number_input if n.label.startswith("max steps"))
    steps.set_value(-5).run()
    assert next(n for n in at.number_input if n.label.startswith("max steps")).value == -5
    assert any("train.max_steps: -5" in e.value for e in at.error), [e.value for e in at.error]
    assert next(b for b in at.button if b.label == "Submit").disabled


@pytest.mark.parametrize("address", ["0.0.0.0", None])
def test_the_shell_served_on_a_public_address_without_a_token_shows_only_the_refusal(populated, monkeypatch, address):
    """The shell served directly (not through app/dashboard.py): on every interface (None: no address set)
    without a token it shows nothing but why."""
    monkeypatch.delenv("SQLGENIE_TOKEN", raising=False)
    at = _app(address)
    at.run()
    assert any("refusing to listen on" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.dataframe and not at.header


def test_the_shell_without_the_doors_cookie_shows_nothing(populated, monkeypatch):
    """With a token, a session whose request carried neither the login cookie nor the bearer token (the shell
    served without its door) sees no page."""
    monkeypatch.setenv("SQLGENIE_TOKEN", "s3cret")
    at = _app()
    at.run()
    assert any("needs the console token" in e.value for e in at.error)
    assert not at.dataframe and not at.header


def test_a_gpu_process_is_named_by_its_job_live_and_not_guessed_in_a_replay():
    import os
    from types import SimpleNamespace

    from app.views.gpus import _what

    jobs = {3: SimpleNamespace(kind="train", name="smollm2-gpu")}
    assert _what({"pid": 1, "job": 3}, jobs, replayed=False) == "train smollm2-gpu"
    assert _what({"pid": os.getpid(), "job": None}, jobs, replayed=False) == open("/proc/self/comm").read().strip()
    assert _what({"pid": 1, "job": 3}, jobs, replayed=True) == ""     # job 3 of another machine's store


def test_the_training_page_shows_a_damaged_run_and_unreadable_metrics_instead_of_failing(populated):
    """A truncated run.json listed as damaged (not hidden), a non-UTF-8 metrics line named: the page renders."""
    from pipeline import config, runs

    damaged = runs.new_run(config.load(None, ["name=broken"]), job_id=201)
    (damaged.dir / "run.json").write_text('{"id": "broken/x", "status": "succ')
    ok = runs.list_runs()[0]
    with open(ok.metrics_path, "ab") as f:
        f.write(b'{"step": 11, "loss": \xff}\n')
    at = _app()
    at.run()
    at.switch_page(PAGES["Training"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "broken" in at.selectbox[0].value                             # listed (the newest), not hidden
    assert any("damaged" in e.value and "run.json" in e.value for e in at.error), [e.value for e in at.error]
    at.selectbox[0].set_value(ok.id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("line 11" in w.value for w in at.warning), [w.value for w in at.warning]
    assert any(m.label == "loss" for m in at.metric)


def test_the_models_page_evaluates_the_base_model_too_with_a_size_and_an_estimate(populated):
    """Evaluate ... opens a form: this fine-tune or its base model, which questions, how many, and the time it
    will take from the newest evaluation measured here; the job it starts says what it evaluates."""
    from pipeline import runs
    from pipeline.jobs import JobStore

    run = runs.list_runs()[0]
    run.adapter_dir.mkdir(parents=True, exist_ok=True)
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    at = _app()
    at.run()
    at.switch_page(PAGES["Models"]).run()
    next(b for b in at.button if b.label == "Evaluate ...").click().run()
    assert any("No evaluation has run on this machine yet" in c.value for c in at.caption)
    done = run.dir / "eval" / "adapter-1"                  # a measured evaluation: the estimate follows it
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"label": "adapter", "backend": "vllm", "seconds": 100.0,
                                                   "latency_per_question_s": 1.5, "split": "ood", "scored": 40,
                                                   "execution_accuracy": 0.1, "valid_sql_rate": 0.9,
                                                   "runs_rate": 0.8, "generation": {"generation_s": 70.0,
                                                                                    "startup_s": 10.0}}))
    at.run()
    assert any(c.value.startswith("Estimated 2.2 min (1.5 s a question + 40 s to load") for c in at.caption), \
        [c.value for c in at.caption]
    at.radio[0].set_value(at.radio[0].options[1])
    n = next(x for x in at.number_input if x.label == "how many (at most)")
    n.set_value(20)
    at.button(key="FormSubmitter:evaluate-Evaluate").click().run()
    store = JobStore()
    job = next(j for j in store.list() if j.kind == "evaluate")
    store.cancel(job.id)
    assert job.name == f"evaluate embedded:smollm2-135m-instruct (base of {run.id})", job.name
    assert "--adapter" not in job.args and job.args[-4:] == ["--split", "ood", "--limit", "20"], job.args
