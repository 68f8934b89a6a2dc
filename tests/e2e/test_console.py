"""The console in a real headless Chromium (Debian's, via Playwright): dashboard + playground, real parts.

Starts Streamlit and the Gradio playground as subprocesses on a temporary SQLGENIE_HOME, one vLLM CPU
replica of SmolLM2 behind vllm-router for the playground. Screenshots go to tests/e2e/artifacts/.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "tests" / "e2e" / "artifacts"


def _start(cmd: list[str], env: dict, url: str, log: Path, timeout: float = 120) -> subprocess.Popen:
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return p
        except requests.RequestException:
            pass
        if p.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.5)
    raise RuntimeError(f"{cmd} not up: {log.read_text()[-2000:]}")


def _stop(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-home")
    e = dict(os.environ, SQLGENIE_HOME=str(home), PYTHONUNBUFFERED="1")
    ART.mkdir(parents=True, exist_ok=True)
    return e


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium",
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def _dashboard(env, tmp: Path) -> subprocess.Popen:
    return _start([sys.executable, "-m", "streamlit", "run", "app/dashboard.py", "--server.port=18501",
                   "--server.headless=true", "--browser.gatherUsageStats=false"], env,
                  "http://127.0.0.1:18501/_stcore/health", tmp / "dash.log")


def _goto(page, name: str) -> None:
    page.get_by_text(name, exact=True).first.click()
    page.wait_for_timeout(800)


def test_dashboard_jobs_training_cancel_restart(env, browser, tiny_llama_dir, tmp_path):
    from pipeline.jobs import JobStore
    from tests.conftest import gretel_row, write_gretel

    data = write_gretel(tmp_path / "rows.parquet", [gretel_row(i) for i in range(64)])
    cfg = (f"name: e2e-train\nmodel: {{name_or_path: '{tiny_llama_dir}'}}\n"
           f"data: {{sources: [{{path: '{data}'}}], eval_fraction: 0, max_seq_len: 256}}\n"
           "train: {backend: trl, batch_size: 4, learning_rate: 0.01, lora: {r: 8, alpha: 16}, max_steps: 20000,"
           " logging_steps: 1, save_steps: 1000, threads: 1}\n")
    dash = _dashboard(env, tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto("http://127.0.0.1:18501")
        page.wait_for_selector("text=sqlgenie", timeout=30000)
        _goto(page, "New job")
        page.get_by_label("Config (YAML; fields you leave out keep their defaults)").fill(cfg)
        page.get_by_role("button", name="Submit").click()
        page.wait_for_selector("text=submitted", timeout=30000)
        page.screenshot(path=str(ART / "new-job.png"))
        os.environ["SQLGENIE_HOME"] = env["SQLGENIE_HOME"]
        store = JobStore(Path(env["SQLGENIE_HOME"]) / "jobs.db")
        train_id = store.list()[0].id
        # another job, to cancel from the UI
        other = store.submit("prepare", "name: big\ndata:\n  sources: [{path: 'bundled:train', weight: 30}]\n")

        _goto(page, "Training")
        page.wait_for_selector(".js-plotly-plot", timeout=120000)
        step1 = int(page.get_by_test_id("stMetricValue").first.inner_text().split("/")[0])
        page.wait_for_timeout(5000)
        step2 = int(page.get_by_test_id("stMetricValue").first.inner_text().split("/")[0])
        assert step2 > step1, "the loss chart did not update"
        page.screenshot(path=str(ART / "training.png"))

        _goto(page, "Jobs")
        page.get_by_role("combobox").first.click()
        page.get_by_text(f"#{other} big").click()
        page.get_by_role("button", name="Cancel").click()
        deadline = time.time() + 30
        while store.get(other).status != "cancelled" and time.time() < deadline:
            time.sleep(0.5)
        assert store.get(other).status == "cancelled"
        page.screenshot(path=str(ART / "jobs.png"))
        _goto(page, "GPUs")
        page.wait_for_selector("text=CPU", timeout=20000)
        page.screenshot(path=str(ART / "gpus.png"))
        _goto(page, "Models")
        page.screenshot(path=str(ART / "models.png"))
        page.close()
    finally:
        _stop(dash)
    # the dashboard is gone; the training job is not
    assert store.get(train_id).status == "running"
    dash = _dashboard(env, tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto("http://127.0.0.1:18501")
        page.wait_for_selector("text=e2e-train", timeout=30000, state="attached")  # grid cells are drawn on a canvas
        assert store.get(train_id).status == "running"
        page.screenshot(path=str(ART / "jobs-after-restart.png"))
        page.close()
    finally:
        _stop(dash)
        store.cancel(train_id)


def test_playground_question_to_sql_and_rows(env, browser, tmp_path):
    from serving import launch

    os.environ["SQLGENIE_HOME"] = env["SQLGENIE_HOME"]
    cfg = launch.ServeConfig(model="embedded:smollm2-135m-instruct", name="sqlgenie", replicas=1, base_port=18900,
                             router_port=18980, metrics_port=18981, max_model_len=2048, warmup_requests=1)
    launch.up(cfg, progress=lambda *_: None)
    play = None
    try:
        play = _start([sys.executable, "app/playground.py"], dict(env, PLAYGROUND_PORT="17860"),
                      "http://127.0.0.1:17860", tmp_path / "play.log")
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto("http://127.0.0.1:17860")
        page.get_by_role("button", name="Generate SQL").click()
        page.wait_for_selector("#result table", timeout=120000)
        page.wait_for_selector("#stats:has-text(\"ms\")", timeout=60000)
        sql = page.locator("#sql_out .cm-content").inner_text()
        assert "SELECT" in sql.upper()
        assert "valid" in page.locator("#status").inner_text()
        assert "answered by http://127.0.0.1:18900" in page.locator("#stats").inner_text()
        page.screenshot(path=str(ART / "playground.png"), full_page=True)
        page.close()
    finally:
        if play:
            _stop(play)
        launch.down("sqlgenie")
