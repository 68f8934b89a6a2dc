"""Training data brought from the browser, in a real headless Chromium against the real console (`sqlgenie console
--no-serve`) with real jobs, on the embedded default model (CPU):

  Data page: a JSONL of the wrong shape is refused with its message -> a Gretel JSONL uploaded -> its preview and
  the check's progress -> the validation report (rows dropped with their reasons, the token lengths) -> "Train on
  this" -> the New-job form on the upload -> Submit a 2-step train job -> it trains (its progress bar), on the data
  the check prepared -> the uploads list: Remove asks first and names the run trained on it.

Screenshots: tests/e2e/artifacts/data-*.png.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from pipeline.jobs import JobStore
from tests.conftest import gretel_row
from tests.e2e import test_whole_path as whole_path

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "tests" / "e2e" / "artifacts"
STEPS = 2
console = whole_path.console          # the console of the whole-path test (`sqlgenie console --no-serve`), one a module


def _rows() -> bytes:
    rows = [gretel_row(i) for i in range(24)]
    rows[4]["sql"] = "SELECT FROM products WHERE;"                    # does not parse
    rows[9]["sql"] = "SELECT price FROM prices;"                      # does not run on its own schema
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _choose(page, name: str, data: bytes) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])


def test_upload_preview_report_train_on_this(console, browser):
    store = JobStore(console["home"] / "jobs.db")
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    page.goto(f"{console['dash']}/data")
    page.wait_for_selector("text=Bring your own training data", timeout=60000)

    lines = _rows().split(b"\n")
    broken = b"\n".join(lines[:2] + [b'{"sql_prompt": "How many?",'] + lines[2:])       # line 3 is not JSON
    _choose(page, "broken.jsonl", broken)
    page.wait_for_selector("text=line 3 is not JSON", timeout=60000)
    page.screenshot(path=str(ART / "data-1-refused.png"), full_page=True)
    assert not (console["home"] / "uploads").exists() or not any((console["home"] / "uploads").iterdir())

    page.goto(f"{console['dash']}/data")
    page.wait_for_selector("text=Bring your own training data", timeout=60000)
    _choose(page, "shop questions.jsonl", _rows())
    page.wait_for_selector("text=Upload shop-questions", timeout=60000)
    page.wait_for_selector("text=Preview", timeout=30000)
    try:
        page.wait_for_selector("text=checking (job", timeout=15000)                              # the progress bar
        page.screenshot(path=str(ART / "data-2-preview-checking.png"), full_page=True)
    except Exception:        # noqa: BLE001 - a quick check may end before the bar is drawn
        pass
    page.wait_for_selector("text=Dropped rows", timeout=300000)
    link = page.get_by_role("link", name=re.compile("Train on this"))
    link.wait_for(timeout=30000)
    metrics = {m.locator("[data-testid='stMetricLabel']").inner_text(): m.locator("[data-testid='stMetricValue']")
               .inner_text() for m in page.locator("[data-testid='stMetric']").all()}
    assert metrics["rows in"] == "24" and metrics["usable"] == "22" and metrics["dropped"] == "2", metrics
    page.screenshot(path=str(ART / "data-3-report.png"), full_page=True)
    check = next(j for j in store.list() if j.kind == "prepare")
    assert check.status == "succeeded"
    prepared = json.loads((console["home"] / "uploads" / "shop-questions" / "upload.json").read_text())["check"]["prepared"]

    link.click()
    page.wait_for_selector("text=Training on the upload", timeout=60000)
    # the form is drawn in more than one pass: wait for the field's value, do not read it once
    expect(page.get_by_label("name", exact=True)).to_have_value("shop-questions", timeout=30000)
    whole_path._fill(page, "max steps (-1: epochs decide)", str(STEPS))
    page.screenshot(path=str(ART / "data-4-new-job-on-the-upload.png"), full_page=True)
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("text=submitted", timeout=30000)
    job = int(re.search(r"job #(\d+) submitted", page.content()).group(1))
    assert store.get(job).kind == "train" and "shop questions.jsonl" in store.get(job).config

    page.goto(f"{console['dash']}/?job={job}")
    page.wait_for_selector(f"text=/ {STEPS} steps", timeout=600000)          # it trains: its progress bar
    page.screenshot(path=str(ART / "data-5-training.png"), full_page=True)
    log = Path(store.get(job).log_path).read_text()
    assert "preparing it first" not in log, log[-3000:]                       # the check's prepared data, reused
    assert Path(prepared, "train.parquet").is_file()

    page.goto(f"{console['dash']}/data?upload=shop-questions")
    page.get_by_role("button", name="Remove").first.click()
    page.wait_for_selector("text=Runs trained on it keep their prepared data", timeout=30000)
    page.screenshot(path=str(ART / "data-6-remove-asks.png"), full_page=True)
    page.get_by_role("button", name="Keep it").click()
    page.wait_for_selector("text=Runs trained on it keep their prepared data", state="hidden", timeout=30000)
    assert (console["home"] / "uploads" / "shop-questions").is_dir()
    page.close()
