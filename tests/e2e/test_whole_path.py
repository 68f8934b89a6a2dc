"""The whole path a new user clicks through, in a real headless Chromium (Debian's, via Playwright), on the
embedded default, with the real console (`sqlgenie console --no-serve`), real jobs, real vLLM and router:

  New job (form) -> prepare -> train (a few steps, progress bar visible) -> Try it on that run
  -> playground: the fine-tune (the default recipe trains every weight) -> Serving page: stop the deployment -> stop the console.

Screenshots of each step go to tests/e2e/artifacts/. Runs in CI (.ci/run installs Chromium).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.procs import group_alive
from pipeline.jobs import JobStore
from serving import deployments as D
from serving.plan import free_ports
from tests.conftest import share_models, until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "tests" / "e2e" / "artifacts"
STEPS = 3


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    home = share_models(tmp_path_factory.mktemp("e2e") / "home")
    dash, play = free_ports(2)
    env = dict(os.environ, SQLGENIE_HOME=str(home), DASHBOARD_PORT=str(dash), PLAYGROUND_PORT=str(play),
               PYTHONUNBUFFERED="1")
    ART.mkdir(parents=True, exist_ok=True)
    log = open(home.parent / "console.out", "w+")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sqlgenie"), "console", "--no-serve"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    until(lambda: "console is up" in (home.parent / "console.out").read_text() or proc.poll() is not None, 180,
           "the console")
    assert proc.poll() is None, (home.parent / "console.out").read_text()
    old = os.environ.get("SQLGENIE_HOME")
    os.environ["SQLGENIE_HOME"] = str(home)
    yield {"dash": f"http://127.0.0.1:{dash}", "play": f"http://127.0.0.1:{play}", "home": home, "proc": proc}
    store = JobStore(home / "jobs.db")
    for j in store.list():              # a failed test must not leave its Try-it deployment running
        if j.status in ("queued", "running"):
            store.cancel(j.id)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(120)
    out = (home.parent / "console.out").read_text()
    os.environ.pop("SQLGENIE_HOME") if old is None else os.environ.update(SQLGENIE_HOME=old)
    assert "nothing left running" in out, out[-2000:]


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    until(lambda: box.count() == 1, 30, f"one field {label!r} (the previous form's rerun to finish)", 0.3)
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(700)


def _submit(page, kind: str, name: str, steps: int | None = None) -> int:
    page.get_by_text("New job", exact=True).first.click()
    page.wait_for_selector("text=Preset (fills the form)", timeout=30000)
    page.get_by_text(kind, exact=True).first.click()
    page.wait_for_timeout(1500)
    _fill(page, "name", name)
    if steps is not None:
        _fill(page, "max steps (-1: epochs decide)", str(steps))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("text=submitted", timeout=30000)
    return int(re.search(r"job #(\d+) submitted", page.content()).group(1))


def test_form_train_progress_try_it_side_by_side_stop(console, browser):
    store = JobStore(console["home"] / "jobs.db")
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(console["dash"])
    page.wait_for_selector("text=Jobs", timeout=60000)

    prep = _submit(page, "prepare", "e2e")
    page.screenshot(path=str(ART / "1-new-job-form.png"), full_page=True)
    assert until(lambda: store.get(prep).status in ("succeeded", "failed") and store.get(prep), 300,
                  "the prepare job").status == "succeeded", store.get(prep).error

    job = _submit(page, "train", "e2e", steps=STEPS)
    page.goto(f"{console['dash']}/?job={job}")
    page.wait_for_selector(f"text=/ {STEPS} steps", timeout=600000)       # the progress bar
    page.screenshot(path=str(ART / "2-train-progress.png"), full_page=True)
    done = until(lambda: store.get(job).status in ("succeeded", "failed") and store.get(job), 1500, "the train job")
    assert done.status == "succeeded", done.error

    page.goto(f"{console['dash']}/?job={job}")
    page.get_by_role("button", name="Try it").click()
    link = page.get_by_role("link", name=re.compile("Open the playground"))
    link.wait_for(timeout=30000)
    url = link.get_attribute("href")
    deployment = re.search(r"deployment=([\w-]+)", url).group(1)

    play = browser.new_page(viewport={"width": 1600, "height": 1300})
    started = D.exists(deployment) and D.load(deployment)["phase"] == "ready"
    play.goto(url)                  # at once, as a user does: the page says it is starting, then selects it
    play.wait_for_selector("#go", timeout=60000)
    if not started:
        play.wait_for_selector(f"#waiting:has-text('{deployment}')", timeout=60000)
        play.screenshot(path=str(ART / "3a-playground-waiting.png"), full_page=True)
    until(lambda: D.exists(deployment) and D.load(deployment)["phase"] == "ready", 600, "the Try-it deployment")
    play.wait_for_selector("#waiting", state="hidden", timeout=60000)
    play.wait_for_timeout(3000)
    play.click("#go")
    play.wait_for_selector("#a_stats:has-text('ms')", timeout=300000)
    a = play.locator("#a_stats").inner_text()
    # the default CPU recipe is a full fine-tune: served alone, as the deployment's own model (LoRA runs: base and
    # adapter side by side, tests/integration/test_prompt_contract.py; the base from another deployment beside
    # it: tests/unit/test_playground_select.py); this console runs no base deployment (--no-serve)
    assert a.startswith(deployment), a
    assert f"{deployment} (full fine-tune)" in play.locator("#a_title").inner_text()
    assert "b=" not in url and not play.locator("#b_stats").is_visible()
    assert re.search(r"answered by replica \d+@cpu:\d+", a), a             # named by the answer's own header
    assert "syntax" in play.locator("#a_marks").inner_text()
    play.screenshot(path=str(ART / "3-playground-fine-tune.png"), full_page=True)

    groups = [r.pgid for r in D.records(D.load(deployment))]
    page.goto(f"{console['dash']}/serving?deployment={deployment}")
    page.get_by_role("button", name=f"Stop {deployment}").click()
    page.get_by_role("button", name=f"Yes, stop {deployment}").click()
    page.wait_for_selector(f"text=deployment {deployment} stopped", timeout=120000)
    page.screenshot(path=str(ART / "4-serving-stopped.png"), full_page=True)
    assert D.load(deployment)["phase"] == "stopped"
    assert not any(group_alive(r) for r in D.records(D.load(deployment))), groups
    serve_jobs = [j for j in store.list() if j.kind == "serve"]
    assert serve_jobs and all(j.status == "cancelled" for j in serve_jobs)
    page.close()
    play.close()


def test_the_console_refuses_a_public_bind_without_a_token(tmp_path):
    env = dict(os.environ, SQLGENIE_HOME=str(tmp_path), SQLGENIE_HOST="0.0.0.0")
    env.pop("SQLGENIE_TOKEN", None)
    p = subprocess.run([sys.executable, "-m", "app.cli", "console", "--no-serve"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "refusing to listen on 0.0.0.0 without a token" in (p.stdout + p.stderr)
